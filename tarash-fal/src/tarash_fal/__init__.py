"""tarash-fal: the fal.ai provider for Tarash.

Installing the distribution registers ``provider="fal"`` through the ``tarash`` entry point;
nothing needs importing. This package adds the :mod:`tarash_fal.testing` module (a fake fal queue
server and a pytest fixture). Connections to fal are tarash-core's: ``Gateway.close()`` releases
them.
"""

from __future__ import annotations

__all__: list[str] = []
