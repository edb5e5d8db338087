"""Which ledger is in effect: ``TARASH_LEDGER``, :func:`set_ledger`, the default SQLite file."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .._redact import get_logger
from ..exceptions import LedgerError, ValidationError
from .adapter import LedgerAdapter
from .records import OFF_VALUES, JobStore
from .sqlite import SQLiteJobStore

if TYPE_CHECKING:
    from .postgres import PostgresJobStore

log = get_logger("tarash.ledger")

__all__ = [
    "DATABASE_URL_SCHEMES",
    "active_ledger",
    "active_store",
    "data_dir",
    "ledger_path",
    "open_ledger",
    "set_ledger",
]


_state_lock = threading.Lock()
_override: tuple[JobStore | None] | None = None
#: The store set_ledger opened from a path (closed when replaced; stores passed in are the caller's).
_override_owned: SQLiteJobStore | PostgresJobStore | None = None
_opened: dict[str, JobStore | None] = {}
_adapters: dict[int, LedgerAdapter] = {}
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def _postgres_store(url: str) -> PostgresJobStore:
    """A PostgreSQL store for ``url`` (not connected yet); ImportError without the extra."""
    try:
        # lazy: PostgreSQL needs the optional postgres extra
        from .postgres import PostgresJobStore
    except ImportError as exc:
        raise ImportError(
            f"A PostgreSQL job ledger needs {exc.name}: pip install 'tarash-core[postgres]'",
            name=exc.name,
        ) from exc
    return PostgresJobStore(url)


def _environment_database(url: str) -> JobStore | None:
    """The store for ``TARASH_LEDGER=postgresql://...``: None (logged) without the extra.

    A database that cannot be reached now is logged and kept: its writes are retried on each use.
    """
    try:
        store = _postgres_store(url)
    except ImportError as exc:
        log.warning("Tarash job ledger is off: %s", exc)
        return None
    import psycopg

    try:
        store.open()
    except psycopg.Error as exc:
        log.warning(
            "Tarash job ledger %r cannot be used now (%s: %s); retried on each use",
            store,
            type(exc).__name__,
            exc,
        )
    return store


def data_dir() -> Path:
    """Where Tarash keeps its files: ``TARASH_HOME``, else the platform's user data directory."""
    home = os.environ.get("TARASH_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tarash"
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg).expanduser() / "tarash"
    return Path.home() / ".local" / "share" / "tarash"


def ledger_path() -> Path | None:
    """Where the default ledger's file is according to the environment; None when off or a database."""
    setting = os.environ.get("TARASH_LEDGER", "").strip()
    if setting.lower() in OFF_VALUES or setting.startswith(DATABASE_URL_SCHEMES):
        return None
    if setting:
        return Path(setting).expanduser()
    try:
        return data_dir() / "jobs.db"
    except RuntimeError:
        return None


def set_ledger(target: JobStore | str | os.PathLike[str] | None) -> None:
    """Choose this process's ledger: a :class:`JobStore`, a SQLite file path, a ``postgresql://``
    URL, ``"off"``, or None.

    None goes back to the environment's choice (``TARASH_LEDGER``, ``TARASH_HOME``...). A path is
    opened at once, so a file that cannot be written raises here (OSError or sqlite3.Error;
    LedgerError on a file system that refuses SQLite's WAL journal), as does a database that cannot
    be reached (psycopg.Error; ImportError without the ``postgres`` extra); the store opened for it
    is closed when another ledger replaces it. A :class:`JobStore` passed in stays open: closing it
    is the caller's business.
    """
    global _override, _override_owned
    chosen: tuple[JobStore | None] | None
    owned: SQLiteJobStore | PostgresJobStore | None = None
    if target is None:
        chosen = None
    elif isinstance(target, (str, os.PathLike)):
        text = os.fspath(target)
        if text.strip().lower() in OFF_VALUES:
            chosen = (None,)
        elif text.strip().startswith(DATABASE_URL_SCHEMES):
            owned = _postgres_store(text.strip()).open()
            chosen = (owned,)
        else:
            owned = SQLiteJobStore(text).open()
            chosen = (owned,)
    elif isinstance(target, JobStore):
        chosen = (target,)
    else:
        raise ValidationError(
            f"set_ledger: expected a JobStore, a path, 'off' or None, got {type(target).__name__}",
            field="target",
            value=None,
        )
    with _state_lock:
        _override, replaced = chosen, _override_owned
        _override_owned = owned
    if replaced is not None:
        replaced.close()


def active_store() -> JobStore | None:
    """The ledger's store now in effect, opened on first use; None when the ledger is off."""
    with _state_lock:
        if _override is not None:
            return _override[0]
    setting = os.environ.get("TARASH_LEDGER", "").strip()
    if setting.startswith(DATABASE_URL_SCHEMES):
        with _state_lock:
            if setting not in _opened:
                _opened[setting] = _environment_database(setting)
            return _opened[setting]
    path = ledger_path()
    if path is None:
        return None
    key = str(path)
    with _state_lock:
        if key in _opened:
            return _opened[key]
        import sqlite3

        try:
            store: SQLiteJobStore | None = SQLiteJobStore(path).open()
        except (OSError, sqlite3.Error, LedgerError) as exc:  # LedgerError: no WAL there
            store = None
            log.info(
                "Tarash job ledger is off: %s cannot be used (%s: %s). Set TARASH_LEDGER "
                "to a writable file on a local disk, or TARASH_LEDGER=off to silence this.",
                path,
                type(exc).__name__,
                exc,
            )
        _opened[key] = store
        return store


def active_ledger() -> LedgerAdapter | None:
    """The engine-facing ledger for :func:`active_store`, or None when the ledger is off."""
    store = active_store()
    if store is None:
        return None
    with _state_lock:
        adapter = _adapters.get(id(store))
        if adapter is None or adapter.store is not store:
            adapter = _adapters[id(store)] = LedgerAdapter(store)
        return adapter


def open_ledger(choice: JobStore | str | os.PathLike[str]) -> LedgerAdapter | None:
    """The ledger a ``Gateway(ledger=...)`` asked for: a store, a SQLite path, a ``postgresql://``
    URL, or off."""
    if isinstance(choice, JobStore):
        return LedgerAdapter(choice)
    text = os.fspath(choice)
    if text.strip().lower() in OFF_VALUES:
        return None
    if text.strip().startswith(DATABASE_URL_SCHEMES):
        return LedgerAdapter(_postgres_store(text.strip()).open())
    return LedgerAdapter(SQLiteJobStore(text).open())
