"""The default :class:`JobStore`: one SQLite file shared safely by the processes of one machine."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._fleet import FileSlots, file_slots
from .._redact import get_logger
from ..exceptions import LedgerError
from .records import (
    BUSY_TIMEOUT_MS,
    COLUMNS,
    RETENTION_DAYS,
    SCHEMA_VERSION,
    BudgetCheck,
    BudgetsFoundSet,
    JobEvent,
    JobRecord,
    NeedsConnection,
    dumps,
    record_from_row,
    utc,
)
from .sqlite_process import SQLiteLoopConnection, insert_rows
from .sqlite_sql import ADDED_COLUMNS, BUDGET_SET, OPS, OPS_INSERT, OPS_PER_INSERT, PRAGMAS, SCHEMA

if TYPE_CHECKING:
    import asyncio
    import sqlite3


__all__ = ["SQLiteJobStore"]

log = get_logger("tarash.ledger")


# ----------------------------------------------------------------------------------------------


#: Connections a forked child inherited from its parent: SQLite must not close (or free) them in
#: the child, so they are kept referenced and never used.
_INHERITED: list[sqlite3.Connection] = []

#: The parameters of one row of the ``ops`` view.
_ROW = "(" + ", ".join(["?"] * 12) + ")"


class SQLiteJobStore:
    """The default :class:`JobStore`: one SQLite file shared safely by processes on one machine.

    Finished jobs older than ``retention_days`` (None: keep forever) are deleted, with their
    history, when a process first opens the file; unfinished jobs are never deleted. Keep the file
    on a local disk: SQLite's WAL mode does not work over network file systems (one that refuses
    it cannot be opened: LedgerError).
    """

    def __init__(self, path: str | os.PathLike[str], retention_days: float | None = RETENTION_DAYS) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._batching = False  # a batch() of the thread holding _lock is open
        self._begun = False  # that batch's transaction has begun (it reads, or writes another way)
        self._batch_failed = False  # a write inside that batch raised
        self._ops: list[tuple[Any, ...]] = []  # that batch's rows for the ops view, not yet inserted
        self._budgeted: dict[str, bool] = {}  # that batch's reads: whether each budget is set
        #: ``rows``: the ``ops`` rows an event loop's thread collects (see :meth:`collecting`).
        self._collected = threading.local()
        self._budgets_set = BudgetsFoundSet()
        self._helper_failed = False  # an event loop's helper process could not start

    def __repr__(self) -> str:
        return f"SQLiteJobStore({str(self.path)!r})"

    def _rows(self) -> list[tuple[Any, ...]] | None:
        """The rows this thread collects for an event loop (see :meth:`collecting`), if it does."""
        rows: list[tuple[Any, ...]] | None = getattr(self._collected, "rows", None)
        return rows

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock, for a call that uses the connection; a call made while this thread
        collects an event loop's writes raises NeedsConnection instead (the loop must not wait for
        the lock: the writer's thread may hold it for a whole batch)."""
        if self._rows() is not None:
            raise NeedsConnection
        with self._lock:
            yield

    def fleet_slots(self) -> FileSlots | None:
        """Fleet-wide concurrency slots of the processes sharing this file (``_fleet``)."""
        return file_slots(self.path)

    def open(self) -> SQLiteJobStore:
        """Create the file and schema now (raises OSError or sqlite3.Error when it cannot, and
        LedgerError when its file system refuses SQLite's WAL journal)."""
        self._connection()
        return self

    def __enter__(self) -> SQLiteJobStore:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None or self._pid != os.getpid():
                if self._conn is not None:
                    _INHERITED.append(self._conn)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn, self._pid = self._open(), os.getpid()
            return self._conn

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL and create the schema.

        Switching the journal mode does not wait on the busy timeout, so when several processes
        open a new file at once it is retried until that timeout has passed. A file system that
        refuses WAL (SQLite then answers with the mode it keeps) raises LedgerError: the store is
        not used in another journal mode. There a reader blocks every commit (an intent would fail
        whenever one reads for longer than the busy timeout), and ``synchronous=NORMAL`` no longer
        guarantees that a power loss leaves the file uncorrupted; falling back to it, or to another
        ``synchronous``, would change what a recorded write is worth without anyone asking.
        """
        import sqlite3

        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise LedgerError(
                        f"The job ledger {str(self.path)!r} cannot use SQLite's WAL journal here (the file "
                        f"system refused it; the journal mode stays {mode!r}). Keep the ledger on a local "
                        "disk (TARASH_LEDGER=/local/path/jobs.db), use a PostgreSQL ledger "
                        "(TARASH_LEDGER=postgresql://...), or switch it off (TARASH_LEDGER=off)."
                    )
                for statement in PRAGMAS:
                    conn.execute(statement)
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA:
                    conn.execute(statement)
                have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
                for column, kind in ADDED_COLUMNS:
                    if column not in have:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                if self.retention_days is not None:
                    cutoff = (time.time() - self.retention_days * 86400,)
                    conn.execute(
                        "DELETE FROM events WHERE key IN (SELECT key FROM jobs WHERE finished_at < ?)",
                        cutoff,
                    )
                    conn.execute("DELETE FROM jobs WHERE finished_at < ?", cutoff)
                conn.execute("COMMIT")
                for statement in OPS:
                    conn.execute(statement)
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
                continue
            except BaseException:
                conn.close()
                raise
            return conn

    @contextmanager
    def _write(self, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; inside :meth:`batch`, the batch's, after inserting its pending
        ``ops`` rows (unless ``flush`` is False: a write that only adds rows of its own).

        A COMMIT that fails (SQLITE_BUSY while a reader holds the file in rollback-journal mode, a
        full disk) leaves SQLite's transaction open, so it is undone like a write that raised:
        left open, the next read here would see the uncommitted rows as stored, and the next
        write could not begin."""
        with self._locked():
            conn = self._connection()
            if self._batching:
                try:
                    if flush:
                        self._begin(conn)
                        self._flush_ops(conn)
                    yield conn
                except BaseException:
                    # The write may be half done: the whole batch is undone (a write that
                    # swallows the error does not get its half stored).
                    self._batch_failed = True
                    raise
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    @contextmanager
    def _one_row(self) -> Iterator[sqlite3.Connection | None]:
        """A write that is one ``ops`` row and nothing else: while this thread collects an event
        loop's writes, the row is collected (no connection: None); inside :meth:`batch`, the
        batch's (as ``_write(flush=False)``); outside one, that row's INSERT is its own
        transaction. SQLite makes a statement atomic, its triggers' changes included, and takes
        the write lock as it starts (as :meth:`batch` relies on too): a BEGIN IMMEDIATE and a
        COMMIT around it would be two statements more, each one more hand-over of the interpreter
        lock between the writer's thread and a busy event loop. A statement that fails is undone by
        SQLite; a transaction it leaves open all the same is rolled back, as :meth:`_write` does."""
        if self._rows() is not None:
            yield None
            return
        with self._lock:
            if self._batching:
                with self._write(flush=False) as conn:
                    yield conn
                return
            conn = self._connection()
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around this thread's writes inside it (see
        :class:`~.records.BatchStore`); other threads' calls wait for it. Its writes' rows for the
        ``ops`` view are inserted together, by as few statements as they fit in, when a write
        that reads or changes the file another way comes (which begins the transaction, ``BEGIN
        IMMEDIATE``) or the batch ends. A batch of rows alone that fit in one statement is that
        statement, its own transaction: SQLite takes the write lock as it starts."""
        with self._locked():
            conn = self._connection()
            self._batching, self._batch_failed, self._ops, self._budgeted = True, False, [], {}
            self._begun = False
            try:
                yield
                if self._batch_failed:
                    raise LedgerError("A write of the batch failed; none of the batch is stored")
                if not self._begun and len(self._ops) <= OPS_PER_INSERT:
                    self._flush_ops(conn)
                    return
                self._begin(conn)
                self._flush_ops(conn)
                if not conn.in_transaction:
                    # SQLite ended the transaction itself (a full disk, an I/O error): some of
                    # the batch's statements are gone, so none of it may count as stored.
                    raise LedgerError("SQLite rolled back the batch's transaction")
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                self._batching, self._begun, self._ops, self._budgeted = False, False, [], {}

    def _rollback(self, conn: sqlite3.Connection) -> None:
        """Undo the transaction a write or batch that failed left open (if SQLite has not ended it
        already), so that every call outside a batch starts on a connection outside any
        transaction and reads only committed rows. A ROLLBACK that fails too would leave the
        transaction open: the connection is then closed instead (which rolls it back) and the next
        call opens a new one. The write's own error is the one raised, not the ROLLBACK's."""
        import sqlite3

        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("Tarash job ledger %r: ROLLBACK failed; reconnecting", self, exc_info=True)
        finally:
            if conn.in_transaction:
                conn.close()
                self._conn = None

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Begin the batch's transaction, holding the file's write lock to its end (once)."""
        if not self._begun:
            conn.execute("BEGIN IMMEDIATE")
            self._begun = True

    def _op(
        self,
        conn: sqlite3.Connection | None,
        kind: str,
        key: str,
        *text: str | None,
        state: str | None = None,
        owner: str | None = None,
        at: float | None = None,
        lease: float | None = None,
    ) -> None:
        """Make a change through the ``ops`` view (:data:`.sqlite_sql.OPS` says what ``text``
        holds for each ``kind``); inside a batch, with the batch's others; while this thread
        collects an event loop's writes, collected (``conn`` is None)."""
        row = (kind, key, state, *text, *(None,) * (6 - len(text)), owner, at, lease)
        collected = self._rows()
        if collected is not None:
            collected.append(row)
        elif self._batching:
            self._ops.append(row)
        else:
            assert conn is not None
            conn.execute(OPS_INSERT + _ROW, row)

    def _flush_ops(self, conn: sqlite3.Connection) -> None:
        """Insert the batch's pending ``ops`` rows, :data:`OPS_PER_INSERT` a statement, in order."""
        rows, self._ops = self._ops, []
        insert_rows(conn, rows, OPS_INSERT, OPS_PER_INSERT)

    def _event(
        self,
        conn: sqlite3.Connection,
        key: str,
        kind: str,
        state: str | None,
        detail: Mapping[str, Any] | None,
        now: float,
    ) -> None:
        """Add a row to a job's history."""
        self._op(conn, "event", key, kind, dumps(detail) if detail else None, state=state, at=now)

    def record_intent(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        modality: str,
        config: Mapping[str, Any] | None,
        request: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        with self._one_row() as conn:
            self._intent(conn, key, provider, model, modality, config, request, owner, lease_seconds, None)

    def record_budgeted_intent(
        self,
        key: str,
        *,
        check: BudgetCheck,
        cost: Mapping[str, Any] | None,
        provider: str,
        model: str,
        modality: str,
        config: Mapping[str, Any] | None,
        request: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        if self._rows() is not None:
            # An event loop's batch does not read the budget: its row names it, and the statement
            # that makes the batch is refused when it is set (the thread then makes the batch).
            if self._budgets_set.recent(check.name):
                raise NeedsConnection
            fields = (provider, model, modality, config, request, owner, lease_seconds, cost)
            self._intent(None, key, *fields, budget=check.name)
            return
        # One BEGIN IMMEDIATE transaction: it holds the file's write lock from the budget read to
        # the commit, so every writer (thread or process) checks a spend that counts the others. A
        # batch takes that lock before its first read and holds it to its end: it reads whether a
        # budget is set once, and while none is, its intents are recorded without reading it again.
        with self._write(flush=False) as conn:
            if not self._batching or self._budgeted.get(check.name, True):
                if self._batching:
                    self._begin(conn)  # the budget read cannot change before the batch commits
                    self._flush_ops(conn)  # and the check counts the batch's intents before it
                row = conn.execute("SELECT budget FROM budgets WHERE name = ?", (check.name,)).fetchone()
                if self._batching:
                    self._budgeted[check.name] = row is not None
                if row is not None:
                    check(json.loads(row[0]), lambda since: self._costs(conn, since))
            self._intent(conn, key, provider, model, modality, config, request, owner, lease_seconds, cost)

    def _intent(
        self,
        conn: sqlite3.Connection | None,
        key: str,
        provider: str,
        model: str,
        modality: str,
        config: Mapping[str, Any] | None,
        request: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
        cost: Mapping[str, Any] | None,
        budget: str | None = None,
    ) -> None:
        """The intent's row; ``budget`` names the budget not checked yet (a collected intent)."""
        now = time.time()
        self._op(
            conn,
            "intent",
            key,
            provider,
            model,
            modality,
            dumps(config),
            dumps(request),
            dumps(cost),
            state=budget,
            owner=owner,
            at=now,
            lease=now + lease_seconds if owner else None,
        )

    def record_submitted(
        self,
        key: str,
        *,
        job_id: str,
        job: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        now = time.time()
        with self._one_row() as conn:
            self._op(
                conn,
                "submitted",
                key,
                job_id,
                dumps(job),
                dumps({"job_id": job_id}),
                owner=owner,
                at=now,
                lease=now + lease_seconds,
            )

    def record_status(
        self,
        key: str,
        *,
        state: str,
        detail: Mapping[str, Any],
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        now = time.time()
        with self._one_row() as conn:
            self._op(
                conn,
                "status",
                key,
                dumps(detail),
                state=state,
                owner=owner,
                at=now,
                lease=now + lease_seconds,
            )

    def record_cancel(self, key: str, *, detail: Mapping[str, Any]) -> None:
        with self._one_row() as conn:
            self._op(conn, "cancel", key, dumps(detail), at=time.time())

    def record_event(self, key: str, *, kind: str, detail: Mapping[str, Any]) -> None:
        now = time.time()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM jobs WHERE key = ?", (key,)).fetchone():
                self._event(conn, key, kind, None, detail, now)

    def record_finished(
        self,
        key: str,
        *,
        state: str,
        result: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        with self._one_row() as conn:
            self._op(conn, "finished", key, dumps(result), dumps(error), state=state, at=time.time())

    def record_cost(self, key: str, *, cost: Mapping[str, Any]) -> None:
        with self._one_row() as conn:
            self._op(conn, "cost", key, dumps(cost))

    def record_billed(self, key: str, *, billed: Mapping[str, Any]) -> bool:
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT key FROM jobs WHERE key = ? OR job_id = ?", (key, key)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE jobs SET billed = ? WHERE key = ?", (dumps(billed), row[0]))
            self._event(conn, row[0], "billed", None, billed, now)
            return True

    def costs_since(self, since: float) -> list[dict[str, Any]]:
        with self._locked():
            return self._costs(self._connection(), since)

    @staticmethod
    def _costs(conn: sqlite3.Connection, since: float) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT cost FROM jobs WHERE created_at >= ? AND cost IS NOT NULL", (since,)
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def set_budget(self, name: str, budget: Mapping[str, Any] | None) -> None:
        with self._write() as conn:
            self._budgeted.pop(name, None)
            if budget is None:
                conn.execute("DELETE FROM budgets WHERE name = ?", (name,))
                return
            conn.execute(
                "INSERT INTO budgets (name, budget, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET budget = excluded.budget, updated_at = excluded.updated_at",
                (name, dumps(budget), time.time()),
            )

    def get_budget(self, name: str) -> dict[str, Any] | None:
        with self._locked():
            row = self._connection().execute("SELECT budget FROM budgets WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def claim(self, key: str, *, owner: str, lease_seconds: float, steal_from: str | None = None) -> bool:
        now = time.time()
        with self._write() as conn:
            claimed = (
                conn.execute(
                    "UPDATE jobs SET owner = ?, lease_until = ?"
                    " WHERE key = ? AND finished_at IS NULL"
                    " AND (owner IS NULL OR owner = ? OR lease_until < ? OR owner = ?)",
                    (owner, now + lease_seconds, key, owner, now, steal_from),
                ).rowcount
                == 1
            )
            if claimed:
                self._event(conn, key, "claim", None, {"owner": owner}, now)
            return claimed

    def release(self, key: str, *, owner: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE key = ? AND owner = ?",
                (key, owner),
            )

    def get(self, key: str) -> JobRecord | None:
        with self._locked():
            conn = self._connection()
            if self._batching and self._ops:  # in a batch, it sees the batch's writes
                self._begin(conn)
                self._flush_ops(conn)
            row = conn.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE key = ? OR job_id = ? ORDER BY created_at LIMIT 1",
                (key, key),
            ).fetchone()
        return record_from_row(row) if row is not None else None

    def records(self, state: str | None = None) -> list[JobRecord]:
        query = f"SELECT {COLUMNS} FROM jobs"
        params: tuple[Any, ...] = ()
        if state == "unfinished":
            query += " WHERE finished_at IS NULL"
        elif state is not None:
            query += " WHERE state = ?"
            params = (state,)
        with self._locked():
            rows = self._connection().execute(query + " ORDER BY created_at, key", params).fetchall()
        return [record_from_row(row) for row in rows]

    def events(self, key: str) -> list[JobEvent]:
        with self._locked():
            rows = (
                self._connection()
                .execute(
                    "SELECT key, at, kind, state, detail FROM events WHERE key = ? ORDER BY id",
                    (key,),
                )
                .fetchall()
            )
        return [
            JobEvent(
                key=r[0],
                at=utc(r[1]),
                kind=r[2],
                state=r[3],
                detail=json.loads(r[4]) if r[4] else {},
            )
            for r in rows
        ]

    # -- an event loop's writes (see LoopStore) ------------------------------------------------

    #: The writes a loop's batch must hold to start its helper process: a loop that writes a job
    #: or two at a time leaves them to the writer's thread (a process costs more than they do).
    loop_batch_from = 8

    def runs_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Any event loop but on Windows: a loop's connection is a helper process whose standard
        input and output are a socket, which Windows does not allow (there, the thread)."""
        return sys.platform != "win32"

    def _open_here(self) -> bool:
        """Whether the file is open in this process (its schema made, by the writer's thread)."""
        return self._conn is not None and self._pid == os.getpid()

    @contextmanager
    def collecting(self) -> Iterator[list[tuple[Any, ...]]]:
        """This thread's writes inside are collected (rows of the ``ops`` view), not made; one
        that needs the file now raises NeedsConnection. The store must be open in this process
        (by the writer's thread, at the first write)."""
        if not self._open_here() or self._rows() is not None:
            raise NeedsConnection
        rows: list[tuple[Any, ...]] = []
        self._collected.rows = rows
        try:
            yield rows
        finally:
            self._collected.rows = None

    async def connect_loop(self) -> SQLiteLoopConnection:
        """A connection of the running event loop's own: a helper process that makes its batches
        (see :mod:`.sqlite_process`). A helper that cannot start is not tried again: the loop's
        writes go to the writer's thread. Not before the store is open in this process: the helper
        opens the file the writer's thread has created (its schema, WAL mode)."""
        if self._helper_failed or not self._open_here():
            raise NeedsConnection
        setup = {
            "path": str(self.path),
            "busy_seconds": BUSY_TIMEOUT_MS / 1000,
            "statements": [*PRAGMAS, *OPS],
            "insert": OPS_INSERT,
            "per": OPS_PER_INSERT,
            "budget_set": BUDGET_SET,
        }
        try:
            return await SQLiteLoopConnection.start(setup, self._budgets_set)
        except Exception:
            self._helper_failed = True
            raise

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
