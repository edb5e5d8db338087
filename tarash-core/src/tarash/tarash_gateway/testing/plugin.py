"""The conformance kit's pytest plugin: opt in with ``pytest_plugins = [__name__ of this module]``.

It is deliberately not auto-loaded (no ``pytest11`` entry point), so installing tarash-core never
changes unrelated pytest runs. It provides:

* strict plugin loading (``TARASH_STRICT_PLUGINS=1``) for the whole run, unless already set;
* the ``tarash_api_key`` fixture: a distinctive key the kit hunts for in logs and errors;
* a report header line listing the installed Tarash plugins.
"""

from __future__ import annotations

import os
import secrets

import pytest

__all__ = [
    "pytest_configure",
    "pytest_report_header",
    "tarash_api_key",
]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TARASH_STRICT_PLUGINS", "1")


def pytest_report_header(config: pytest.Config) -> str:
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group="tarash"), key=lambda e: e.name):
        dist = ep.dist
        found.append(f"{ep.name} ({dist.metadata['Name']} {dist.version})" if dist else ep.name)
    return "tarash plugins: " + (", ".join(found) or "none installed")


@pytest.fixture(scope="session")
def tarash_api_key() -> str:
    """A distinctive API key, unique per test session, that must never appear in any output."""
    return f"tk-conformance-{secrets.token_hex(16)}"
