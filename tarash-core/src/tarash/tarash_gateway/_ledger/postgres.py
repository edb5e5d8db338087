"""The job ledger on PostgreSQL: one store shared by a fleet of workers on many machines.

Selected by ``TARASH_LEDGER=postgresql://...`` or ``set_ledger("postgresql://...")``; needs the
``postgres`` extra (psycopg 3 and psycopg_pool), imported only when selected.

It keeps SQLite's guarantees across machines:

- every write is one statement, committed before the call returns (the intent before the
  submit is sent), and a batch's writes of jobs are one statement too (the schema's
  ``tarash_apply_ops`` makes them in order); status observations and releases are committed
  asynchronously (``synchronous_commit = off``): a database crash can lose the last few, never
  a job;
- an event loop's writes are made on that loop, by one call of ``tarash_apply_ops`` on a psycopg
  ``AsyncConnection`` of the loop's own (:class:`PgLoopConnection`, see :mod:`.loop_queue`);
  those that need the database at once (a budget that is set, the liveness connection's check)
  raise NeedsConnection while collected, and the writer's thread makes them;
- while a budget is set, an intent is one transaction with the budget's check, serialised by the
  budget's row locked ``FOR UPDATE``: workers never together pass the last of a budget;
- ``claim`` is one atomic ``UPDATE`` on a row locked ``FOR UPDATE SKIP LOCKED``, so two workers
  never both collect a job and a claimer never queues behind another;
- a claim holds while its lease runs (renewed by every status poll) *and* while its owner is
  alive. An owner is alive while its process holds a session advisory lock named after it, on a
  connection of its own: when a worker dies (SIGKILL, OOM, lost machine), the server drops its
  connection, the lock goes, and any worker on any machine may take its jobs at once. Times are
  the database server's clock, so the workers' clocks do not matter;
- a live worker whose liveness connection dropped looks dead until it reconnects, so before it
  collects a result it checks that the job is still its own (``holds``, a ``FencedStore``), taking
  its lock back first: a job another worker took meanwhile is left to that worker.

The schema is created and migrated by the store itself (``tarash_schema`` holds the applied
versions; migrations run under an advisory lock, so many workers starting at once apply them
once); ``tarash jobs migrate`` does it by hand.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from .._plain import to_json_text
from ..exceptions import LedgerError
from . import pg_sql as sql
from .pg_slots import PgSlots
from .pg_sql import SCHEMA_VERSION
from .records import (
    BUSY_TIMEOUT_MS,
    RETENTION_DAYS,
    Answer,
    BudgetCheck,
    BudgetsFoundSet,
    JobEvent,
    JobRecord,
    NeedsConnection,
    dumps,
    record_from_row,
    utc,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["SCHEMA_VERSION", "PostgresJobStore"]

#: Seconds between checks that the liveness connection still holds its locks (a database restart
#: drops them: they are then taken again).
LIVENESS_CHECK_SECONDS = 5.0
_CONNECT_TIMEOUT = BUSY_TIMEOUT_MS // 1000
#: The ``conn`` of a thread's batch while an event loop's writes are collected (nothing is sent).
_COLLECTING: Any = object()


class PostgresJobStore:
    """A :class:`~tarash.tarash_gateway.jobs.JobStore` in a PostgreSQL database, for a fleet.

    ``url``: a libpq URL or conninfo string (``postgresql://user:password@host:5432/db``).
    ``pool_size``: the most connections this process opens for ledger writes (plus one, held for
    the process's life, that signals it is alive). ``migrate``: create or upgrade the schema on
    open (else it must be at :data:`SCHEMA_VERSION`: ``tarash jobs migrate``). Finished jobs older
    than ``retention_days`` (None: keep forever) are deleted with their history on open.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        migrate: bool = True,
        retention_days: float | None = RETENTION_DAYS,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.auto_migrate = migrate
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._pool: ConnectionPool[Any] | None = None
        self._alive: psycopg.Connection[Any] | None = None
        self._held: set[str] = set()
        self._pid = 0
        self._ready = False
        self._checked = 0.0
        self._slots: PgSlots | None = None
        self._budgets_set = BudgetsFoundSet()
        #: This thread's open batch: .conn (None when none), .ops (its writes not yet sent),
        #: .stack (the ExitStack its transaction is begun on), .begun (whether it is), .budgeted
        #: (budget name -> whether it exists).
        self._batch = threading.local()

    def __repr__(self) -> str:
        parts = conninfo_to_dict(self.url)
        port = f":{parts['port']}" if parts.get("port") else ""
        return f"PostgresJobStore('postgresql://{parts.get('host', '')}{port}/{parts.get('dbname', '')}')"

    # -- connections -------------------------------------------------------------------------

    def _liveness(self, *, check: bool = False) -> psycopg.Connection[Any]:
        """This process's own connection, holding its owners' locks; reconnected (and the locks
        taken again) when the database dropped it, which is checked every LIVENESS_CHECK_SECONDS
        (or now, with ``check``)."""
        alive = self._alive
        if (
            alive is not None
            and not alive.closed
            and (check or time.monotonic() - self._checked > LIVENESS_CHECK_SECONDS)
        ):
            try:
                alive.execute("SELECT 1")
            except psycopg.Error:
                alive.close()
        if alive is None or alive.closed:
            alive = psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
            alive.execute(sql.KEEPALIVES)
            for name in self._held:
                alive.execute(sql.LOCK_OWNER, (name,))
            self._alive = alive
        self._checked = time.monotonic()
        return alive

    def _raw_pool(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is not None and self._pid != os.getpid():
                # A forked child drops its parent's connections without closing them (psycopg
                # never ends a session from another process when freeing it) and opens its own.
                self._pool, self._alive, self._held, self._ready = None, None, set(), False
                self._slots = None
            if self._pool is None:
                self._liveness()
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT},
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    name="tarash-ledger",
                    open=False,
                )
                self._pool.open()
                self._pid = os.getpid()
            return self._pool

    def _connections(self) -> ConnectionPool[Any]:
        """The pool, once the schema is ready (migrated or checked, and pruned, on first use)."""
        with self._lock:
            pool = self._raw_pool()
            if self._ready:
                return pool
            version = self.migrate() if self.auto_migrate else self.schema_version()
            if version < SCHEMA_VERSION:
                raise psycopg.ProgrammingError(
                    f"the ledger schema in {self!r} is at version {version}, this Tarash needs "
                    f"{SCHEMA_VERSION}: run `tarash jobs migrate`"
                )
            if self.retention_days is not None:
                old = "finished_at < statement_timestamp() - %s * interval '1 second'"
                cutoff = (self.retention_days * 86400,)
                with pool.connection() as conn, conn.transaction():
                    conn.execute(
                        "DELETE FROM tarash_job_events"
                        f" WHERE key IN (SELECT key FROM tarash_jobs WHERE {old})",
                        cutoff,
                    )
                    conn.execute(f"DELETE FROM tarash_jobs WHERE {old}", cutoff)
            self._ready = True
            return pool

    def fleet_slots(self) -> PgSlots:
        """This process's fleet-wide concurrency slots in this database (``_fleet``)."""
        with self._lock:
            if self._slots is None:
                self._slots = PgSlots(self.url, connect_timeout=_CONNECT_TIMEOUT)
            return self._slots

    def open(self) -> PostgresJobStore:
        """Connect, migrate (unless ``migrate=False``) and prune now; raises psycopg errors."""
        self._connections()
        return self

    def __enter__(self) -> PostgresJobStore:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's connections: its claims are then free for other workers to take."""
        with self._lock:
            if self._pid == os.getpid():
                if self._alive is not None:
                    self._alive.close()
                if self._pool is not None:
                    self._pool.close()
                if self._slots is not None:
                    self._slots.close()
            self._pool, self._alive, self._held, self._ready = None, None, set(), False
            self._slots = None

    def schema_version(self) -> int:
        """The highest migration applied to the database (0: none)."""
        with self._raw_pool().connection() as conn:
            return sql.applied_version(conn)

    def migrate(self) -> int:
        """Apply the missing migrations (idempotent, safe from many processes); the version after."""
        found = self.schema_version()
        if found >= SCHEMA_VERSION:
            return found
        with self._raw_pool().connection() as conn:
            return sql.apply_migrations(conn)

    def _hold(self, owner: str | None, *, check: bool = False) -> None:
        """Make ``owner`` (a process of this one) look alive to other workers until we exit. The
        liveness connection is checked by a round trip every LIVENESS_CHECK_SECONDS; with
        ``check``, also now, without one (:meth:`_quiet`), and by the round trip if that fails."""
        if owner is None:
            return
        if self._held_lately(owner) and (not check or self._quiet()):
            return
        if getattr(self._batch, "conn", None) is _COLLECTING:
            raise NeedsConnection  # the liveness connection is due a check: the thread makes it
        with self._lock:
            self._connections()
            if self._held_lately(owner) and (not check or self._quiet()):
                return
            alive = self._liveness(check=check)
            if owner not in self._held:
                alive.execute(sql.LOCK_OWNER, (owner,))
                self._held.add(owner)

    def _quiet(self) -> bool:
        """Whether nothing came on the liveness connection, which waits idle between its checks:
        a session the server ended (terminated, timed out, restarted; a proxy recycling it) sends
        its last message and closes, and its socket can then be read. No round trip: an event
        loop's batch asks it (a check that runs beside the thread's round trip reads its answer,
        and sends the caller to the thread, which checks again)."""
        alive = self._alive
        try:
            return (
                alive is not None
                and not alive.closed
                and not select.select([alive.pgconn.socket], [], [], 0)[0]
            )
        except (OSError, ValueError, psycopg.Error):
            return False

    def _held_lately(self, owner: str) -> bool:
        """``owner``'s lock is held, and the liveness connection was checked lately."""
        return owner in self._held and time.monotonic() - self._checked <= LIVENESS_CHECK_SECONDS

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection to write on, or to read what this thread's batch wrote: the batch's (its
        pending writes sent first, so what comes next sees them), else one of the pool's."""
        pinned: psycopg.Connection[Any] | None = getattr(self._batch, "conn", None)
        if pinned is _COLLECTING:
            raise NeedsConnection
        if pinned is not None:
            self._begin()
            self._send_ops(pinned)
            yield pinned
            return
        with self._connections().connection() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction, on one of the pool's connections, around this thread's writes inside
        it (see :class:`~.records.BatchStore`). The writes that change a job are sent together,
        as one call of ``tarash_apply_ops``, when a write that reads or changes the database
        another way comes (which begins the transaction; its statements are then pipelined, sent
        without waiting for each answer where libpq can, and a failed one fails the batch at its
        end) or the batch ends. A batch of such writes alone is that call, its own transaction.
        It commits durably unless it holds only status writes and releases (as they do alone)."""
        state = self._batch
        with self._connections().connection() as conn:
            state.conn, state.ops, state.begun, state.budgeted = conn, [], False, {}
            try:
                with ExitStack() as state.stack:
                    yield
                    self._send_ops(conn)
                    if state.begun:
                        if conn.info.transaction_status == TransactionStatus.INERROR:
                            raise LedgerError("A write of the batch failed; none of the batch is stored")
                        conn.execute(sql.SYNC_COMMIT).fetchone()
            except psycopg.Error as exc:
                if exc.sqlstate == sql.BUDGET_SET:
                    # A budget was set since the batch looked: its intents were not recorded.
                    raise LedgerError("A budget was set while the batch ran; none of it is stored") from exc
                raise
            finally:
                state.conn, state.ops, state.begun, state.budgeted = None, [], False, {}

    def _begin(self) -> None:
        """Begin this thread's batch's transaction (once): pipelined, on the batch's connection."""
        state = self._batch
        if not state.begun:
            state.stack.enter_context(self._pipeline(state.conn))
            state.stack.enter_context(state.conn.transaction())
            state.begun = True

    def _apply(self, op: dict[str, Any]) -> int:
        """Make one write: alone, now, by its own statement (1 when it is an intent not made
        because its budget is set, else 0); in a batch, with the batch's others (0)."""
        batch = self._batch
        if getattr(batch, "conn", None) is not None:
            batch.ops.append(op)
            return 0
        budgeted = op["op"] == "intent" and op.get("budget") is not None
        statement = sql.UNBUDGETED_INTENT if budgeted else sql.ALONE[op["op"]]
        with self._connections().connection() as conn:
            cursor = conn.execute(statement, op)
            return int(budgeted and cursor.fetchone() is None)

    def _send_ops(self, conn: psycopg.Connection[Any]) -> None:
        """Send this thread's batch's pending writes, in one call."""
        batch = self._batch
        if batch.ops:
            conn.execute(sql.APPLY, (to_json_text(batch.ops),))
            batch.ops = []

    # -- an event loop's writes (see LoopStore) ------------------------------------------------

    #: A loop's first batch opens its connection (a socket to the server, as any other client's).
    loop_batch_from = 1

    def runs_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """psycopg's async connections run on any event loop but Windows' default (proactor) one."""
        import asyncio  # lazy: a loop is running, so asyncio is loaded already

        return sys.platform != "win32" or not isinstance(loop, asyncio.ProactorEventLoop)  # type: ignore[attr-defined,unused-ignore]

    @contextmanager
    def collecting(self) -> Iterator[list[dict[str, Any]]]:
        """This thread's writes inside are collected (the ops of ``tarash_apply_ops``), not made;
        one that needs the database now raises NeedsConnection. The store must be ready (opened
        in this process, by the writer's thread)."""
        state = self._batch
        if not self._ready or self._pid != os.getpid() or getattr(state, "conn", None) is not None:
            raise NeedsConnection
        state.conn, state.ops, state.begun, state.budgeted = _COLLECTING, [], False, {}
        try:
            yield state.ops
        finally:
            state.conn, state.ops, state.begun, state.budgeted = None, [], False, {}

    async def connect_loop(self) -> PgLoopConnection:
        """A connection of the running event loop's own (psycopg's ``AsyncConnection``)."""
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
        )
        return PgLoopConnection(self, conn)

    @staticmethod
    def _pipeline(conn: psycopg.Connection[Any]) -> AbstractContextManager[Any]:
        return conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext()

    def _execute(self, statement: str, params: Mapping[str, Any], *, answer: bool = False) -> bool:
        """Run one write statement; with ``answer`` (a statement returning what it changed), True
        when it changed a row. In a batch, a statement without ``answer`` is only queued; one with
        it waits for the batch's statements sent so far and its own."""
        with self._writing() as conn:
            cursor = conn.execute(statement, params)
            return answer and cursor.fetchone() is not None

    # -- writes --------------------------------------------------------------------------------

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
        self._hold(owner)
        self._apply(
            {
                "op": "intent",
                "key": key,
                "provider": provider,
                "model": model,
                "modality": modality,
                "config": dumps(config),
                "request": dumps(request),
                "owner": owner,
                "lease": lease_seconds,
                "cost": None,
            }
        )

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
        self._hold(owner)
        op = {
            "op": "intent",
            "key": key,
            "provider": provider,
            "model": model,
            "modality": modality,
            "config": dumps(config),
            "request": dumps(request),
            "owner": owner,
            "lease": lease_seconds,
            "cost": dumps(cost),
            "budget": check.name,
        }
        batch = self._batch
        if getattr(batch, "conn", None) is not None:
            # In a batch, whether the budget exists is read once; while it does not, the intent
            # goes with the batch's writes, and the batch checks at its end that it was made.
            if check.name not in batch.budgeted:
                if batch.conn is _COLLECTING:
                    # An event loop's batch does not read it: the call refuses the batch when it is.
                    if self._budgets_set.recent(check.name):
                        raise NeedsConnection
                    batch.budgeted[check.name] = False
                else:
                    found = batch.conn.execute("SELECT 1 FROM tarash_budgets WHERE name = %s", (check.name,))
                    batch.budgeted[check.name] = found.fetchone() is not None
            if not batch.budgeted[check.name]:
                self._apply(op)
                return
        elif not self._apply(op):
            return
        # A budget is set: its row, locked FOR UPDATE, serialises the writers checked against it
        # on every machine; each one's spend is read after the one before it has committed.
        with self._writing() as conn, conn.transaction():
            row = conn.execute(sql.LOCK_BUDGET, (check.name,)).fetchone()
            if row is not None:
                check(json.loads(row[0]), lambda since: self._costs(conn, since))
            conn.execute(sql.INTENT, op)

    def record_submitted(
        self,
        key: str,
        *,
        job_id: str,
        job: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        self._hold(owner)
        self._apply(
            {
                "op": "submitted",
                "key": key,
                "job_id": job_id,
                "job": dumps(job),
                "owner": owner,
                "lease": lease_seconds,
                "event": dumps({"job_id": job_id}),
            }
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
        self._hold(owner)
        text = dumps(detail)
        self._apply(
            {
                "op": "status",
                "key": key,
                "state": state,
                "detail": text,
                "event": text if detail else None,
                "owner": owner,
                "lease": lease_seconds,
            }
        )

    def record_cancel(self, key: str, *, detail: Mapping[str, Any]) -> None:
        text = dumps(detail)
        self._apply({"op": "cancel", "key": key, "detail": text, "event": text if detail else None})

    def record_event(self, key: str, *, kind: str, detail: Mapping[str, Any]) -> None:
        self._apply({"op": "event", "key": key, "kind": kind, "detail": dumps(detail)})

    def record_finished(
        self,
        key: str,
        *,
        state: str,
        result: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        self._apply(
            {"op": "finished", "key": key, "state": state, "result": dumps(result), "error": dumps(error)}
        )

    def claim(self, key: str, *, owner: str, lease_seconds: float, steal_from: str | None = None) -> bool:
        self._hold(owner)
        return self._execute(
            sql.CLAIM,
            {
                "key": key,
                "owner": owner,
                "steal": steal_from,
                "lease": lease_seconds,
                "event": dumps({"owner": owner}),
            },
            answer=True,
        )

    def holds(self, key: str, *, owner: str, lease_seconds: float) -> bool | Answer:
        """(See :class:`~.records.FencedStore`.) The owner's lock is checked and, if its
        connection had dropped, taken again before the claim is read, so that a claimer that
        found the lock free has taken the job by then, or cannot take it any more. An event
        loop's batch asks it on the loop's connection (:class:`PgLoopConnection`)."""
        self._hold(owner, check=True)
        asked = {"key": key, "owner": owner, "lease": lease_seconds}
        batch = self._batch
        if getattr(batch, "conn", None) is _COLLECTING:
            answer = Answer()
            batch.ops.append({"op": "hold", "question": asked, "answer": answer})
            return answer
        with self._writing() as conn:
            return conn.execute(sql.HOLD, (to_json_text([asked]),)).fetchone() is not None

    def release(self, key: str, *, owner: str) -> None:
        self._apply({"op": "release", "key": key, "owner": owner})

    # -- costs and budgets ---------------------------------------------------------------------

    def record_cost(self, key: str, *, cost: Mapping[str, Any]) -> None:
        self._apply({"op": "cost", "key": key, "cost": dumps(cost)})

    def record_billed(self, key: str, *, billed: Mapping[str, Any]) -> bool:
        return self._execute(sql.BILLED, {"key": key, "billed": dumps(billed)}, answer=True)

    def costs_since(self, since: float) -> list[dict[str, Any]]:
        with self._connections().connection() as conn:
            return self._costs(conn, since)

    @staticmethod
    def _costs(conn: psycopg.Connection[Any], since: float) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT cost::text FROM tarash_jobs WHERE created_at >= to_timestamp(%s) AND cost IS NOT NULL",
            (since,),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def set_budget(self, name: str, budget: Mapping[str, Any] | None) -> None:
        with self._connections().connection() as conn:
            if budget is None:
                conn.execute("DELETE FROM tarash_budgets WHERE name = %s", (name,))
                return
            conn.execute(
                "INSERT INTO tarash_budgets (name, budget, updated_at) VALUES (%s, %s::json, now())"
                " ON CONFLICT (name) DO UPDATE"
                " SET budget = excluded.budget, updated_at = excluded.updated_at",
                (name, dumps(budget)),
            )

    def get_budget(self, name: str) -> dict[str, Any] | None:
        with self._connections().connection() as conn:
            row = conn.execute("SELECT budget::text FROM tarash_budgets WHERE name = %s", (name,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: str) -> JobRecord | None:
        with self._writing() as conn:  # in a batch, it sees the batch's writes
            row = conn.execute(
                f"SELECT {sql.COLUMNS} FROM tarash_jobs WHERE key = %s OR job_id = %s"
                " ORDER BY created_at LIMIT 1",
                (key, key),
            ).fetchone()
        return record_from_row(row) if row is not None else None

    def records(self, state: str | None = None) -> list[JobRecord]:
        query = f"SELECT {sql.COLUMNS} FROM tarash_jobs"
        params: tuple[Any, ...] = ()
        if state == "unfinished":
            query += " WHERE finished_at IS NULL"
        elif state is not None:
            query += " WHERE state = %s"
            params = (state,)
        with self._connections().connection() as conn:
            rows = conn.execute(query + " ORDER BY created_at, key", params).fetchall()
        return [record_from_row(row) for row in rows]

    def events(self, key: str) -> list[JobEvent]:
        with self._connections().connection() as conn:
            rows = conn.execute(
                "SELECT key, extract(epoch FROM at)::float8, kind, state, detail::text"
                " FROM tarash_job_events WHERE key = %s ORDER BY id",
                (key,),
            ).fetchall()
        return [
            JobEvent(key=r[0], at=utc(r[1]), kind=r[2], state=r[3], detail=json.loads(r[4]) if r[4] else {})
            for r in rows
        ]


class PgLoopConnection:
    """An event loop's own connection to a :class:`PostgresJobStore` (a ``LoopConnection``)."""

    def __init__(self, store: PostgresJobStore, conn: psycopg.AsyncConnection[Any]) -> None:
        self._store = store
        self._conn = conn

    async def apply(self, collected: list[dict[str, Any]]) -> None:
        """Make ``collected`` by one call of ``tarash_apply_ops`` (its own transaction), then
        ask its ``holds`` questions in one statement and set their answers."""
        ops = [op for op in collected if op["op"] != "hold"]
        asked = [op for op in collected if op["op"] == "hold"]
        try:
            if ops:
                await self._conn.execute(sql.APPLY, (to_json_text(ops),))
            if asked:
                questions = [op["question"] for op in asked]
                cursor = await self._conn.execute(sql.HOLD, (to_json_text(questions),))
                held = {row[0] for row in await cursor.fetchall()}
                for op in asked:
                    op["answer"].value = op["question"]["key"] in held
        except psycopg.Error as exc:
            if exc.sqlstate == sql.BUDGET_SET:
                self._store._budgets_set.note(op.get("budget") for op in collected)
                raise NeedsConnection from exc
            self.discard()
            raise

    def discard(self) -> None:
        """Close the connection now, without waiting (libpq's ``PQfinish``: the server ends the
        session, rolling back what it had under way)."""
        self._conn.pgconn.finish()
