"""A correct provider whose entry module imports an HTTP library at import time."""

from __future__ import annotations

import httpx  # noqa: F401 - the planted break: this belongs inside the hooks

from .service import GoodProvider

PLUGIN = GoodProvider("kitheavy")
