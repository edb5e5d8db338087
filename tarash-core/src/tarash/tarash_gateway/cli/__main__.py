"""``python -m tarash.tarash_gateway.cli``: the ``tarash`` command."""

import sys

from . import main

__all__ = []

if __name__ == "__main__":
    sys.exit(main())
