"""A SQLite ledger write whose COMMIT fails is undone, so nothing is submitted on an intent that did
not commit, and the store goes on: the intent is recorded before its submit, or the submit is not
sent (LedgerError).

SQLite keeps a transaction open when its COMMIT fails. The COMMIT that fails here is a real one:
in rollback-journal mode it needs the file to itself, and another connection holds a read
transaction on it for longer than the busy timeout (shortened). The store no longer opens a file
whose file system refuses WAL (the last test), but a COMMIT can fail in WAL mode too (a full disk,
an I/O error), leaving the transaction open in the same way.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_gateway import EchoPlugin, echo_config, mock_gateway
from test_job_store import intent

from tarash.tarash_gateway import VideoGenerationRequest
from tarash.tarash_gateway._ledger import SQLiteJobStore
from tarash.tarash_gateway._ledger import sqlite as sqlite_module
from tarash.tarash_gateway.exceptions import LedgerError

CONNECT = sqlite3.connect


@pytest.fixture(autouse=True)
def _short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A COMMIT blocked by a reader fails after 0.2 s instead of the store's 10 s."""
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 200)


class RollbackJournalStore(SQLiteJobStore):
    """The store with its file in rollback-journal mode, where a reader blocks a COMMIT."""

    def _open(self) -> sqlite3.Connection:
        conn = super()._open()
        conn.execute("PRAGMA journal_mode=DELETE")
        return conn


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Another connection holds a read transaction on ``path`` (as ``tarash jobs list`` would)."""
    reader = CONNECT(str(path), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jobs").fetchall()
        yield
    finally:
        reader.close()


def committed(path: Path) -> list[tuple[str, str | None, str]]:
    """The rows committed to ``path``, read by a connection of their own."""
    conn = CONNECT(str(path))
    try:
        return conn.execute("SELECT key, job_id, state FROM jobs ORDER BY created_at").fetchall()
    finally:
        conn.close()


def test_a_write_whose_commit_fails_is_rolled_back_and_the_next_write_works(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = RollbackJournalStore(path).open()
    with reading(path):
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            intent(store, "k1")
        # read on the store's own connection: the row was rolled back, not left uncommitted
        assert store.get("k1") is None
        assert store.records() == []
    assert committed(path) == []
    intent(store, "k2")
    assert committed(path) == [("k2", None, "submitting")]
    store.close()


def test_an_intent_whose_commit_fails_sends_nothing_and_the_ledger_goes_on(tmp_path: Path) -> None:
    """The invariant: the intent's COMMIT failed, so the generation raises LedgerError before its
    request goes out, and the next generation on the same store is recorded."""
    path = tmp_path / "jobs.db"
    store = RollbackJournalStore(path).open()
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")
    with reading(path):
        with pytest.raises(LedgerError, match="could not record the submit intent"):
            gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
        assert log == []
        assert store.records() == []
    assert committed(path) == []
    response = gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert (len(log), response.request_id) == (1, "e-1")
    assert [(job_id, state) for _, job_id, state in committed(path)] == [(None, "completed")]
    store.close()


class FailingRollback(sqlite3.Connection):
    """A connection whose ROLLBACK fails (as one may, on an I/O error): the store must not go on
    reading through the transaction left open."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def test_a_failed_rollback_never_lets_the_uncommitted_intent_count_as_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The adapter's check that a failed intent write is stored after all reads the store: the
    intent's uncommitted row, on the connection still inside its transaction, must not vouch."""
    path = tmp_path / "jobs.db"
    store = RollbackJournalStore(path).open()
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")
    store.close()
    monkeypatch.setattr(sqlite3, "connect", functools.partial(CONNECT, factory=FailingRollback))
    store.open()
    monkeypatch.setattr(sqlite3, "connect", CONNECT)
    with reading(path):
        with pytest.raises(LedgerError, match="could not record the submit intent"):
            gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
        assert log == []
    assert "ROLLBACK failed; reconnecting" in caplog.text
    assert committed(path) == []
    response = gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert (len(log), response.request_id) == (1, "e-1")
    assert [(job_id, state) for _, job_id, state in committed(path)] == [(None, "completed")]
    store.close()


class RefusesWal(sqlite3.Connection):
    """A connection on a file system that refuses WAL: SQLite then answers with the mode it keeps."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.replace(" ", "").upper() == "PRAGMAJOURNAL_MODE=WAL":
            return super().execute("PRAGMA journal_mode")
        return super().execute(sql, *args)


def test_a_file_system_that_refuses_wal_cannot_hold_a_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is not used in another journal mode (where a reader blocks every commit):
    opening it raises LedgerError, and the default ledger there is off, as on a file that cannot
    be written (one INFO line; the generation goes on unrecorded)."""
    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    monkeypatch.setattr(sqlite3, "connect", functools.partial(CONNECT, factory=RefusesWal))
    path = tmp_path / "jobs.db"
    with pytest.raises(LedgerError, match="cannot use SQLite's WAL journal here") as raised:
        SQLiteJobStore(path).open()
    assert "journal mode stays 'delete'" in str(raised.value)
    log: list[httpx.Request] = []
    gateway = mock_gateway(log)
    gateway.register_plugin(EchoPlugin(), "echo")
    with caplog.at_level(logging.INFO, logger="tarash"):
        response = gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert (response.request_id, len(log)) == ("e-1", 1)
    assert gateway.ledger() is None
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Tarash job ledger is off")]
    assert line.startswith(f"Tarash job ledger is off: {path} cannot be used (LedgerError: ")
    monkeypatch.setattr(sqlite3, "connect", CONNECT)
    conn = CONNECT(str(path))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        conn.close()
