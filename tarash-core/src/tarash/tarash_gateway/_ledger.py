"""The job ledger: a durable record of every submission, so a crash never costs a second bill.

Core writes, per attempt (see ``_engine.Ledger``): the *intent* before the submit request is sent,
the provider's job id as soon as it is known, every status change, any cancel, and the end (result
as JSON without media bytes, or the error). ``jobs.resume`` reads it back after a restart.

Storage goes through the :class:`JobStore` protocol, which deals only in plain JSON data, so a
shared store (PostgreSQL for a fleet of workers) can be added without touching providers. The
default, :class:`SQLiteJobStore`, is one SQLite file used safely by many processes: WAL journal,
a busy timeout, short ``BEGIN IMMEDIATE`` transactions, and collection claimed with an atomic
``UPDATE ... WHERE owner IS NULL OR lease expired`` so two processes never collect the same job.

Where it lives (first match): ``TARASH_LEDGER`` (a file path, ``off``, or a ``postgresql://`` URL for
the :mod:`PostgreSQL store <._pg_store>` a fleet shares), ``$TARASH_HOME/jobs.db``,
``$XDG_DATA_HOME/tarash/jobs.db``, ``~/.local/share/tarash/jobs.db`` (``%LOCALAPPDATA%`` on
Windows). When that place cannot be written (read-only container), the ledger is off, logged once
at INFO, and generation works as before.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ._redact import get_logger
from .exceptions import JobCancelledError, LedgerError, ValidationError, error_summary
from .plugin import JobRef, Modality

if TYPE_CHECKING:
    import sqlite3

    from ._pg_store import PostgresJobStore

log = get_logger("tarash.ledger")

__all__ = [
    "JobEvent",
    "JobRecord",
    "JobStore",
    "LedgerAdapter",
    "SQLiteJobStore",
    "active_ledger",
    "active_store",
    "data_dir",
    "ledger_path",
    "owner_alive",
    "process_owner",
    "set_ledger",
]

#: Seconds a claim on a job stays valid without a write from its owner (a status poll renews it).
LEASE_SECONDS = 600.0
STATUS_REFRESH_SECONDS = 60.0
#: Days a finished job is kept; older ones are pruned when a process opens the file.
RETENTION_DAYS = 30.0
BUSY_TIMEOUT_MS = 10_000
OFF_VALUES = frozenset({"off", "0", "false", "no", "none", "disabled"})
MEDIA_TEXT_LIMIT = 1024
SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        modality TEXT NOT NULL,
        state TEXT NOT NULL,
        job_id TEXT,
        job TEXT,
        config TEXT,
        request TEXT,
        result TEXT,
        error TEXT,
        detail TEXT,
        cancel TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        owner TEXT,
        lease_until REAL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs(finished_at, created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_job_id ON jobs(job_id)",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        state TEXT,
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS events_key ON events(key, id)",
)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


# ----------------------------------------------------------------------------------------------
# Records and the store protocol
# ----------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class JobRecord:
    """One submission as the ledger knows it.

    Attributes:
        key: Tarash's id for the submission (also the idempotency key sent with the submit).
        state: the last known state: ``submitting`` (intent written, no job id yet),
            ``submitted``, ``queued``, ``processing``, ``completed``, ``failed``, ``cancelled``, or
            ``unknown`` (the submit may have reached the provider but its answer was lost: it may
            have been billed, and it was never resubmitted).
        finished: whether the job's outcome was collected (result or error recorded). A job can be
            ``completed`` but not finished: its result was not fetched yet, ``resume`` fetches it.
        job_id: the provider's id for the job, once known.
        job: the provider's job (id and polling data), once known.
        config, request: as plain JSON (no API key; request media bytes replaced by their size).
        result: the response as plain JSON (media bytes replaced by their size), once finished.
        error: a summary of the error that ended the job.
        detail: the last status details (queue position, progress).
        cancel: the outcome of the last cancel, if one was sent.
        owner, lease_until: the process collecting the job and until when its claim holds.
    """

    key: str
    provider: str
    model: str
    modality: Modality
    state: str
    finished: bool = False
    job_id: str | None = None
    job: JobRef | None = None
    config: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)
    cancel: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None


@attrs.frozen(kw_only=True)
class JobEvent:
    """One entry of a job's history: intent, submitted, status, cancel, claim or finished."""

    key: str
    at: datetime
    kind: str
    state: str | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class JobStore(Protocol):
    """Where the ledger keeps its records; everything passed in and out is plain JSON data.

    Writes must be atomic per call. ``claim`` must be a single atomic compare-and-set so that two
    processes never both collect one job.
    """

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
        """Add a submission before its submit request is sent."""

    def record_submitted(
        self,
        key: str,
        *,
        job_id: str,
        job: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """The provider accepted the submit and gave ``job_id`` (``job``: the JobRef as data)."""

    def record_status(
        self,
        key: str,
        *,
        state: str,
        detail: Mapping[str, Any],
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """A status observation (an event is kept when the state changes); renews owner's lease."""

    def record_cancel(self, key: str, *, detail: Mapping[str, Any]) -> None:
        """A cancel was sent (``detail`` holds the reason and the outcome)."""

    def record_finished(
        self,
        key: str,
        *,
        state: str,
        result: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        """The outcome was collected; releases any claim.

        The first outcome recorded stays (a job cancelled by the caller stays cancelled), except
        that a collected result is always recorded and ``unknown`` can be resolved.
        """

    def claim(self, key: str, *, owner: str, lease_seconds: float, steal_from: str | None = None) -> bool:
        """Atomically become the collector of an unfinished job.

        Succeeds when nobody holds it, ``owner`` already does, the holder's lease expired, or the
        holder is ``steal_from`` (a process the caller found dead).
        """

    def release(self, key: str, *, owner: str) -> None:
        """Give up a claim held by ``owner``."""

    def get(self, key: str) -> JobRecord | None:
        """The record whose key, or provider job id, is ``key``."""

    def records(self, state: str | None = None) -> list[JobRecord]:
        """Records oldest first; ``state`` filters by state, ``"unfinished"`` by not finished."""

    def events(self, key: str) -> list[JobEvent]:
        """A job's history, oldest first."""


# ----------------------------------------------------------------------------------------------
# SQLite store
# ----------------------------------------------------------------------------------------------


#: Connections a forked child inherited from its parent: SQLite must not close (or free) them in
#: the child, so they are kept referenced and never used.
_INHERITED: list[sqlite3.Connection] = []


class SQLiteJobStore:
    """The default :class:`JobStore`: one SQLite file shared safely by processes on one machine.

    Finished jobs older than ``retention_days`` (None: keep forever) are deleted, with their
    history, when a process first opens the file; unfinished jobs are never deleted. Keep the file
    on a local disk: SQLite's WAL mode does not work over network file systems.
    """

    def __init__(self, path: str | os.PathLike[str], retention_days: float | None = RETENTION_DAYS) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"SQLiteJobStore({str(self.path)!r})"

    def open(self) -> SQLiteJobStore:
        """Create the file and schema now (raises OSError or sqlite3.Error when it cannot)."""
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
        open a new file at once it is retried until that timeout has passed.
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
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                if self.retention_days is not None:
                    cutoff = (time.time() - self.retention_days * 86400,)
                    conn.execute(
                        "DELETE FROM events WHERE key IN (SELECT key FROM jobs WHERE finished_at < ?)",
                        cutoff,
                    )
                    conn.execute("DELETE FROM jobs WHERE finished_at < ?", cutoff)
                conn.execute("COMMIT")
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
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _event(
        conn: sqlite3.Connection,
        key: str,
        kind: str,
        state: str | None,
        detail: Mapping[str, Any] | None,
        now: float,
    ) -> None:
        conn.execute(
            "INSERT INTO events (key, at, kind, state, detail) VALUES (?, ?, ?, ?, ?)",
            (key, now, kind, state, _dumps(detail) if detail else None),
        )

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
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO jobs (key, provider, model, modality, state, config, request, detail,"
                " created_at, updated_at, owner, lease_until)"
                " VALUES (?, ?, ?, ?, 'submitting', ?, ?, '{}', ?, ?, ?, ?)",
                (
                    key,
                    provider,
                    model,
                    modality,
                    _dumps(config),
                    _dumps(request),
                    now,
                    now,
                    owner,
                    now + lease_seconds if owner else None,
                ),
            )
            self._event(conn, key, "intent", "submitting", None, now)

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
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE jobs SET state = 'submitted', job_id = ?, job = ?, updated_at = ?,"
                " finished_at = NULL, error = NULL,"
                " lease_until = CASE WHEN owner IS ? THEN ? ELSE lease_until END"
                " WHERE key = ? AND (finished_at IS NULL OR state = 'unknown')",
                (job_id, _dumps(job), now, owner, now + lease_seconds, key),
            ).rowcount
            if updated:
                self._event(conn, key, "submitted", "submitted", {"job_id": job_id}, now)

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
        with self._write() as conn:
            row = conn.execute(
                "SELECT state FROM jobs WHERE key = ? AND finished_at IS NULL", (key,)
            ).fetchone()
            if row is None:
                return
            conn.execute(
                "UPDATE jobs SET state = ?, detail = ?, updated_at = ?,"
                " lease_until = CASE WHEN owner IS ? THEN ? ELSE lease_until END WHERE key = ?",
                (state, _dumps(detail), now, owner, now + lease_seconds, key),
            )
            if row[0] != state:
                self._event(conn, key, "status", state, detail, now)

    def record_cancel(self, key: str, *, detail: Mapping[str, Any]) -> None:
        now = time.time()
        with self._write() as conn:
            if conn.execute(
                "UPDATE jobs SET cancel = ?, updated_at = ? WHERE key = ?",
                (_dumps(detail), now, key),
            ).rowcount:
                self._event(conn, key, "cancel", None, detail, now)

    def record_finished(
        self,
        key: str,
        *,
        state: str,
        result: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        now = time.time()
        with self._write() as conn:
            if conn.execute(
                "UPDATE jobs SET state = ?, result = ?, error = ?, updated_at = ?, finished_at = ?,"
                " owner = NULL, lease_until = NULL WHERE key = ?"
                " AND (finished_at IS NULL OR state = 'unknown' OR ? = 'completed')",
                (state, _dumps(result), _dumps(error), now, now, key, state),
            ).rowcount:
                self._event(conn, key, "finished", state, error, now)

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
        with self._lock:
            row = (
                self._connection()
                .execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE key = ? OR job_id = ? ORDER BY created_at LIMIT 1",
                    (key, key),
                )
                .fetchone()
            )
        return _record(row) if row is not None else None

    def records(self, state: str | None = None) -> list[JobRecord]:
        query = f"SELECT {_COLUMNS} FROM jobs"
        params: tuple[Any, ...] = ()
        if state == "unfinished":
            query += " WHERE finished_at IS NULL"
        elif state is not None:
            query += " WHERE state = ?"
            params = (state,)
        with self._lock:
            rows = self._connection().execute(query + " ORDER BY created_at, key", params).fetchall()
        return [_record(row) for row in rows]

    def events(self, key: str) -> list[JobEvent]:
        with self._lock:
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
                at=_utc(r[1]),
                kind=r[2],
                state=r[3],
                detail=json.loads(r[4]) if r[4] else {},
            )
            for r in rows
        ]

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


_COLUMNS = (
    "key, provider, model, modality, state, job_id, job, config, request, result, error,"
    " detail, cancel, created_at, updated_at, finished_at, owner, lease_until"
)


def _dumps(data: Mapping[str, Any] | None) -> str | None:
    if data is None:
        return None
    from ._converters import to_json_text

    return to_json_text(data)


def _record(row: tuple[Any, ...]) -> JobRecord:
    from ._converters import structure

    (
        key,
        provider,
        model,
        modality,
        state,
        job_id,
        job,
        config,
        request,
        result,
        error,
        detail,
        cancel,
        created_at,
        updated_at,
        finished_at,
        owner,
        lease_until,
    ) = row

    def load(text: str | None) -> Any:
        return json.loads(text) if text else None

    return JobRecord(
        key=key,
        provider=provider,
        model=model,
        modality=modality,
        state=state,
        finished=finished_at is not None,
        job_id=job_id,
        job=structure(json.loads(job), JobRef) if job else None,
        config=load(config),
        request=load(request),
        result=load(result),
        error=load(error),
        detail=load(detail) or {},
        cancel=load(cancel),
        created_at=_utc(created_at),
        updated_at=_utc(updated_at),
        finished_at=_utc(finished_at) if finished_at else None,
        owner=owner,
        lease_until=_utc(lease_until) if lease_until else None,
    )


# ----------------------------------------------------------------------------------------------
# Owners (which process collects a job)
# ----------------------------------------------------------------------------------------------

_owner_lock = threading.Lock()
_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process's owner id: ``host:pid:random`` (new after a fork)."""
    global _owner
    with _owner_lock:
        if _owner is None or _owner[0] != os.getpid():
            _owner = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
        return _owner[1]


def owner_alive(owner: str) -> bool | None:
    """True/False when ``owner`` is a process on this machine that is alive/gone; None otherwise.

    Only used on POSIX (on Windows, signal 0 would not probe the process): elsewhere, and for
    other machines, expiry of the lease decides.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if sys.platform == "win32" or host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------------------------------
# The engine-facing adapter
# ----------------------------------------------------------------------------------------------


def _strip_media(value: Any) -> Any:
    """Plain data with media bytes (base64 objects, long data URIs) replaced by their size."""
    if isinstance(value, dict):
        content = value.get("content")
        if set(value) == {"content", "content_type"} and isinstance(content, str):
            size = len(content) * 3 // 4 - content[-2:].count("=")
            return {"content_type": value["content_type"], "size": size, "stored": False}
        return {key: _strip_media(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip_media(item) for item in value]
    if isinstance(value, str) and value.startswith("data:") and len(value) > MEDIA_TEXT_LIMIT:
        head, _, payload = value.partition(",")
        size = len(payload)
        if head.endswith(";base64"):
            size = size * 3 // 4 - payload[-2:].count("=")
        return f"{head},<{size} bytes not stored>"
    return value


class LedgerAdapter:
    """The engine's ``Ledger``: serialises records (no secrets, no media bytes) into a JobStore.

    A ledger must never break a generation: a store failure is logged (once per kind) and the
    generation goes on.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.active: set[str] = set()
        self._warned: set[str] = set()
        #: key -> (state, when) of the last status written: a poll that changes nothing is written
        #: (renewing the lease) at most every STATUS_REFRESH_SECONDS.
        self._written: dict[str, tuple[str, float]] = {}

    def _guard(self, what: str, write: Callable[[], Any]) -> Any:
        """Run ``write`` (serialising and storing); a failure is logged, never raised."""
        try:
            return write()
        except Exception as exc:
            if what not in self._warned:
                self._warned.add(what)
                log.warning(
                    "Tarash job ledger %s failed on %r; continuing without it: %s: %s",
                    what,
                    self.store,
                    type(exc).__name__,
                    exc,
                )
            return None

    @staticmethod
    def _plain(obj: Any) -> dict[str, Any] | None:
        """``obj`` as JSON-safe data without media bytes; None (logged) when it cannot be."""
        from ._converters import to_json_text, unstructure

        try:
            data = _strip_media(unstructure(obj) if attrs.has(type(obj)) else obj)
            to_json_text(data)
        except (ValidationError, RecursionError, ValueError, TypeError) as exc:
            log.warning(
                "Tarash job ledger: %s not recorded: %s: %s",
                type(obj).__name__,
                type(exc).__name__,
                exc,
            )
            return None
        return data if isinstance(data, dict) else None

    def intent(
        self, key: str, *, provider: str, model: str, modality: str, config: Any, request: Any
    ) -> None:
        """Record the intent to submit. Fails closed: if it cannot be recorded (the store fails,
        or the config or request cannot be serialised), LedgerError is raised and nothing is sent."""
        plain_config = self._plain(attrs.evolve(config, fallback_configs=None))
        plain_request = self._plain(request)
        if plain_config is None or plain_request is None:
            what = "config" if plain_config is None else "request"
            raise LedgerError(
                f"The job ledger cannot record this {what} (see the log), so nothing was submitted. "
                "Fix the value, or switch the ledger off (TARASH_LEDGER=off) to submit unrecorded.",
                provider=provider,
                model=model,
                phase="validate",
            )
        try:
            self.store.record_intent(
                key,
                provider=provider,
                model=model,
                modality=modality,
                config=plain_config,
                request=plain_request,
                owner=process_owner(),
                lease_seconds=LEASE_SECONDS,
            )
        except Exception as exc:
            raise LedgerError(
                f"The job ledger {self.store!r} could not record the submit intent "
                f"({type(exc).__name__}: {exc}), so nothing was submitted. Switch the ledger off "
                "(TARASH_LEDGER=off) to submit unrecorded.",
                provider=provider,
                model=model,
                phase="validate",
            ) from exc
        self.active.add(key)

    def submitted(self, key: str, job: JobRef) -> None:
        self._guard(
            "submitted",
            lambda: self.store.record_submitted(
                key,
                job_id=job.job_id,
                job=self._plain(job),
                owner=process_owner(),
                lease_seconds=LEASE_SECONDS,
            ),
        )

    def status(self, key: str, state: str, detail: Mapping[str, Any]) -> None:
        if state == "cancel":
            self._guard(
                "cancel",
                lambda: self.store.record_cancel(
                    key,
                    detail=self._plain(dict(detail)) or {},
                ),
            )
            return
        now = time.monotonic()
        last = self._written.get(key)
        if last is not None and last[0] == state and now - last[1] < STATUS_REFRESH_SECONDS:
            return
        self._written[key] = (state, now)
        self._guard(
            "status",
            lambda: self.store.record_status(
                key,
                state=state,
                detail=self._plain(dict(detail)) or {},
                owner=process_owner(),
                lease_seconds=LEASE_SECONDS,
            ),
        )

    def finished(self, key: str, state: str, *, result: Any = None, error: Any = None) -> None:
        if isinstance(error, JobCancelledError):
            state = "cancelled"
        self.active.discard(key)
        self._written.pop(key, None)
        self._guard(
            "finished",
            lambda: self.store.record_finished(
                key,
                state=state,
                result=self._plain(result) if result is not None else None,
                error=self._plain(dict(error_summary(error))) if error is not None else None,
            ),
        )

    def claim(self, record: JobRecord) -> bool:
        """Claim ``record`` for collection by this process (never one it is collecting already)."""
        if record.key in self.active:
            return False
        steal = record.owner if record.owner and owner_alive(record.owner) is False else None
        claimed = bool(
            self._guard(
                "claim",
                lambda: self.store.claim(
                    record.key,
                    owner=process_owner(),
                    lease_seconds=LEASE_SECONDS,
                    steal_from=steal,
                ),
            )
        )
        if claimed:
            self.active.add(record.key)
        return claimed

    def release(self, key: str) -> None:
        self.active.discard(key)
        self._guard("release", lambda: self.store.release(key, owner=process_owner()))


# ----------------------------------------------------------------------------------------------
# Which ledger is active
# ----------------------------------------------------------------------------------------------

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
        from ._pg_store import PostgresJobStore
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
    opened at once, so a file that cannot be written raises here (OSError or sqlite3.Error), as does
    a database that cannot be reached (psycopg.Error; ImportError without the ``postgres`` extra); the
    store opened for it is closed when another ledger replaces it. A :class:`JobStore` passed in
    stays open: closing it is the caller's business.
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
        except (OSError, sqlite3.Error) as exc:
            store = None
            log.info(
                "Tarash job ledger is off: %s cannot be written (%s: %s). Set TARASH_LEDGER "
                "to a writable file, or TARASH_LEDGER=off to silence this.",
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
