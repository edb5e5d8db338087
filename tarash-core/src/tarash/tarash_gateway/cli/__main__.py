"""``python -m tarash.tarash_gateway.cli``: the ``tarash`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
