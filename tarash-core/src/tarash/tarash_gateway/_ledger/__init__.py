"""The job ledger (the store layer): a durable record of every submission, so a crash never
costs a second bill.

Core writes, per attempt (see ``_engine.Ledger``): the *intent* before the submit request is sent,
the provider's job id as soon as it is known, every status change, any cancel, and the end (result
as JSON without media bytes, or the error). ``jobs.resume`` reads it back after a restart.

Storage goes through the :class:`JobStore` protocol, which deals only in plain JSON data, so a
shared store (PostgreSQL for a fleet of workers) can be added without touching providers. The
default, :class:`SQLiteJobStore`, is one SQLite file used safely by many processes: WAL journal,
a busy timeout, short ``BEGIN IMMEDIATE`` transactions, and collection claimed with an atomic
``UPDATE ... WHERE owner IS NULL OR lease expired`` so two processes never collect the same job.

Where it lives (first match): ``TARASH_LEDGER`` (a file path, ``off``, or a ``postgresql://`` URL for
the PostgreSQL store a fleet shares, :mod:`.postgres`), ``$TARASH_HOME/jobs.db``,
``$XDG_DATA_HOME/tarash/jobs.db``, ``~/.local/share/tarash/jobs.db`` (``%LOCALAPPDATA%`` on
Windows). When that place cannot be written (read-only container), the ledger is off, logged once
at INFO, and generation works as before.

Modules: :mod:`.records` (records, the ``JobStore`` protocol, the row codec), :mod:`.sqlite` (the
default store; its schema in :mod:`.sqlite_sql`, the helper process a busy event loop writes
through in :mod:`.sqlite_process`), :mod:`.postgres` (the shared store; its SQL in
:mod:`.pg_sql`, its fleet-wide slots in :mod:`.pg_slots`; needs the ``postgres`` extra, imported
only when selected), :mod:`.owner` (which process collects a job), :mod:`.adapter` (what the
engine writes through), :mod:`.writer` (the queue that writes in order, off the event loop,
committing the writes it finds together at once), :mod:`.loop_queue` (an event loop's writes made
from that loop, through PostgreSQL's asynchronous driver or SQLite's helper process),
:mod:`.selection` (which ledger is in effect).

May import: ``exceptions``, ``plugin`` (job references), ``_redact``, ``_plain`` and ``_codec`` (JSON) and
``_runtime`` (the engine's writes are handed back as effects, run off the event loop for async
callers).
Must not import: the engine, the gateway, ``jobs`` or anything above them (they import this).
"""

from __future__ import annotations

from .adapter import LedgerAdapter
from .owner import owner_alive, process_owner
from .records import OFF_VALUES, JobEvent, JobRecord, JobStore
from .selection import active_ledger, active_store, data_dir, ledger_path, open_ledger, set_ledger
from .sqlite import SQLiteJobStore

__all__ = [
    "OFF_VALUES",
    "JobEvent",
    "JobRecord",
    "JobStore",
    "LedgerAdapter",
    "SQLiteJobStore",
    "active_ledger",
    "active_store",
    "data_dir",
    "ledger_path",
    "open_ledger",
    "owner_alive",
    "process_owner",
    "set_ledger",
]
