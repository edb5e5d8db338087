"""tarash-fal: the fal.ai provider for Tarash.

Installing the distribution registers ``provider="fal"`` through the ``tarash`` entry point;
nothing needs importing. This package adds :func:`close_clients` and the
:mod:`tarash_fal.testing` module (a fake fal queue server and a pytest fixture).
"""

from __future__ import annotations

__all__ = ["close_clients"]


def close_clients() -> None:
    """Close the pooled connections of tarash-fal's sync clients.

    Clients are shared per API key, base URL and CA bundle and live as long as the process; call
    this to release their connections early (e.g. between tests). The next call opens new ones.
    Async clients belong to an event loop and are closed when that loop shuts down
    (``asyncio.run`` does this).
    """
    from ._clients import POOLS

    POOLS.close()
