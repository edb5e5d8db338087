"""One conformance suite for every JobStore: the SQLite file and the PostgreSQL database.

Each test runs on both stores (``store_kind``); the PostgreSQL ones on a fresh database of the
session's throwaway cluster (conftest ``pg_cluster``). Several stores on one ledger are separate
connections; processes are real child processes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway._ledger import JobStore, SQLiteJobStore

TESTS = Path(__file__).parent
JOB = {
    "provider": "mock",
    "model": "m",
    "modality": "video",
    "job_id": "job-1",
    "data": {"base": "x"},
    "submitted_at": "2026-01-02T03:04:05+00:00",
}
LEASE = 600.0

StoreFactory = Callable[[], JobStore]


def open_store(spec: dict[str, str]) -> JobStore:
    """A new store (its own connection) on the ledger ``spec`` names."""
    if spec["kind"] == "sqlite":
        return SQLiteJobStore(spec["where"]).open()
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    return PostgresJobStore(spec["where"]).open()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"kind": "sqlite", "where": str(tmp_path / "jobs.db")}
    return {"kind": "postgres", "where": request.getfixturevalue("pg_url")}


@pytest.fixture
def new_store(ledger_spec: dict[str, str]) -> Iterator[StoreFactory]:
    """Opens stores on one ledger; closes them all at the end."""
    opened: list[Any] = []

    def factory() -> JobStore:
        store = open_store(ledger_spec)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(new_store: StoreFactory) -> JobStore:
    return new_store()


def intent(store: JobStore, key: str, owner: str | None = "host:1:a", **fields: Any) -> None:
    values: dict[str, Any] = {
        "provider": "mock",
        "model": "m",
        "modality": "video",
        "config": {"model": "m", "timeout": 30},
        "request": {"prompt": "a cat", "odd": "\u0000 é 🎬"},
        "owner": owner,
        "lease_seconds": LEASE,
        **fields,
    }
    store.record_intent(key, **values)


def history(store: JobStore, key: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.state) for e in store.events(key)]


def close_to_now(moment: datetime | None, slack: float = 5.0) -> bool:
    return moment is not None and abs((moment - datetime.now(timezone.utc)).total_seconds()) < slack


# ----------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------


def test_the_intent_is_a_record_before_anything_else(store: JobStore) -> None:
    intent(store, "k1")
    record = store.get("k1")
    assert record is not None
    assert (record.key, record.provider, record.model, record.modality) == ("k1", "mock", "m", "video")
    assert (record.state, record.finished, record.job_id, record.job) == ("submitting", False, None, None)
    assert record.config == {"model": "m", "timeout": 30}
    assert record.request == {"prompt": "a cat", "odd": "\u0000 é 🎬"}
    assert (record.result, record.error, record.cancel, record.detail) == (None, None, None, {})
    assert record.owner == "host:1:a"
    assert record.lease_until is not None
    assert timedelta(seconds=LEASE - 10) < record.lease_until - record.created_at <= timedelta(seconds=LEASE)
    assert close_to_now(record.created_at) and record.updated_at >= record.created_at
    assert record.finished_at is None
    assert history(store, "k1") == [("intent", "submitting")]


def test_a_duplicate_intent_is_refused(store: JobStore) -> None:
    intent(store, "k1")
    if isinstance(store, SQLiteJobStore):
        expected: type[Exception] = sqlite3.IntegrityError
    else:
        import psycopg

        expected = psycopg.errors.UniqueViolation
    with pytest.raises(expected):
        intent(store, "k1")
    assert len(store.records()) == 1


def test_a_generation_from_intent_to_finished(store: JobStore) -> None:
    intent(store, "k1")
    store.record_submitted("k1", job_id="job-1", job=JOB, owner="host:1:a", lease_seconds=LEASE)
    for state, position in (("queued", 2), ("queued", 1), ("processing", None), ("completed", None)):
        detail = {"queue_position": position, "progress_percent": None}
        store.record_status("k1", state=state, detail=detail, owner="host:1:a", lease_seconds=LEASE)
    running = store.get("k1")
    assert running is not None
    assert (running.state, running.finished, running.job_id) == ("completed", False, "job-1")
    assert running.job is not None and running.job.job_id == "job-1" and running.job.data == {"base": "x"}
    assert running.detail == {"queue_position": None, "progress_percent": None}
    store.record_finished("k1", state="completed", result={"video": "https://cdn/v.mp4"}, error=None)
    store.record_status("k1", state="processing", detail={}, owner="host:1:a", lease_seconds=LEASE)
    record = store.get("k1")
    assert record is not None
    assert (record.state, record.finished, record.owner, record.lease_until) == (
        "completed",
        True,
        None,
        None,
    )
    assert record.result == {"video": "https://cdn/v.mp4"}
    assert close_to_now(record.finished_at)
    assert history(store, "k1") == [
        ("intent", "submitting"),
        ("submitted", "submitted"),
        ("status", "queued"),
        ("status", "processing"),
        ("status", "completed"),
        ("finished", "completed"),
    ]
    assert store.events("k1")[1].detail == {"job_id": "job-1"}
    assert store.events("k1")[2].detail == {"queue_position": 2, "progress_percent": None}


def test_the_first_outcome_stays_except_a_result_or_a_resolved_unknown(store: JobStore) -> None:
    intent(store, "cancelled")
    store.record_finished("cancelled", state="cancelled", result=None, error={"type": "JobCancelledError"})
    store.record_finished("cancelled", state="failed", result=None, error={"type": "Other"})
    record = store.get("cancelled")
    assert record is not None and (record.state, record.error) == ("cancelled", {"type": "JobCancelledError"})
    store.record_finished("cancelled", state="completed", result={"video": "v"}, error=None)
    record = store.get("cancelled")
    assert record is not None and (record.state, record.result) == ("completed", {"video": "v"})

    intent(store, "lost")
    store.record_finished("lost", state="unknown", result=None, error={"type": "UnknownSubmissionError"})
    store.record_submitted("lost", job_id="job-9", job=JOB, owner=None, lease_seconds=LEASE)
    record = store.get("lost")
    assert record is not None
    assert (record.state, record.finished, record.job_id, record.error) == ("submitted", False, "job-9", None)


def test_a_cancel_is_recorded(store: JobStore) -> None:
    intent(store, "k1")
    store.record_cancel("k1", detail={"reason": "deadline", "outcome": "cancelled"})
    record = store.get("k1")
    assert record is not None and record.cancel == {"reason": "deadline", "outcome": "cancelled"}
    assert history(store, "k1") == [("intent", "submitting"), ("cancel", None)]
    store.record_cancel("nope", detail={"reason": "x"})
    assert store.events("nope") == []


def test_a_fact_is_recorded_as_an_event_leaving_the_record_alone(store: JobStore) -> None:
    intent(store, "k1")
    before = store.get("k1")
    detail = {"path": "/tmp/out/cat.mp4", "sha256": "ab" * 32, "bytes": 1234, "source": "https://x/cat.mp4"}
    store.record_event("k1", kind="download", detail=detail)
    assert history(store, "k1") == [("intent", "submitting"), ("download", None)]
    assert store.events("k1")[-1].detail == detail
    after = store.get("k1")
    assert after is not None and before is not None
    assert (after.state, after.finished, after.detail) == (before.state, before.finished, before.detail)
    store.record_event("nope", kind="download", detail=detail)
    assert store.events("nope") == []


def test_get_by_key_or_job_id_and_listing(store: JobStore) -> None:
    for key in ("k1", "k2", "k3"):
        intent(store, key, owner=None)
        time.sleep(0.002)
    store.record_submitted("k2", job_id="job-2", job=JOB, owner=None, lease_seconds=LEASE)
    store.record_finished("k3", state="failed", result=None, error={"type": "GenerationFailedError"})
    assert store.get("job-2") == store.get("k2")
    assert store.get("nope") is None
    assert [r.key for r in store.records()] == ["k1", "k2", "k3"]
    assert [r.key for r in store.records("unfinished")] == ["k1", "k2"]
    assert [r.key for r in store.records("failed")] == ["k3"]
    assert [r.key for r in store.records("submitted")] == ["k2"]
    assert store.records("completed") == []


# ----------------------------------------------------------------------------------------------
# Claims and leases
# ----------------------------------------------------------------------------------------------


def test_claim_release_and_steal(store: JobStore) -> None:
    intent(store, "k1", owner=None)
    assert store.claim("k1", owner="a", lease_seconds=LEASE)
    assert store.claim("k1", owner="a", lease_seconds=LEASE), "the holder claims again"
    assert not store.claim("k1", owner="b", lease_seconds=LEASE)
    store.release("k1", owner="b")
    assert not store.claim("k1", owner="b", lease_seconds=LEASE), "only the holder releases"
    store.release("k1", owner="a")
    record = store.get("k1")
    assert record is not None and (record.owner, record.lease_until) == (None, None)
    assert store.claim("k1", owner="b", lease_seconds=LEASE)
    assert store.claim("k1", owner="c", lease_seconds=LEASE, steal_from="b"), "b was found dead"
    record = store.get("k1")
    assert record is not None and record.owner == "c"
    assert [e.detail for e in store.events("k1") if e.kind == "claim"] == [
        {"owner": "a"},
        {"owner": "a"},
        {"owner": "b"},
        {"owner": "c"},
    ]
    store.record_finished("k1", state="completed", result={}, error=None)
    assert not store.claim("k1", owner="c", lease_seconds=LEASE), "a finished job is never claimed"
    assert not store.claim("missing", owner="c", lease_seconds=LEASE)


def test_an_expired_lease_can_be_taken_and_polls_renew_it(store: JobStore) -> None:
    intent(store, "k1", owner="a", lease_seconds=1.0)
    assert not store.claim("k1", owner="b", lease_seconds=LEASE)
    time.sleep(1.1)
    assert store.claim("k1", owner="b", lease_seconds=1.0)
    store.record_status("k1", state="queued", detail={}, owner="b", lease_seconds=LEASE)
    time.sleep(1.1)
    assert not store.claim("k1", owner="c", lease_seconds=LEASE), "b's status poll renewed its lease"
    store.record_status("k1", state="processing", detail={}, owner="c", lease_seconds=0.0)
    record = store.get("k1")
    assert record is not None and record.owner == "b"
    assert record.lease_until is not None and close_to_now(record.lease_until, LEASE + 5)


def test_two_connections_claim_each_job_exactly_once(new_store: StoreFactory) -> None:
    first, second = new_store(), new_store()
    keys = [f"k{i}" for i in range(30)]
    for key in keys:
        intent(first, key, owner=None)
    won: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def worker(store: JobStore, owner: str) -> None:
        start.wait()
        won[owner] = [key for key in keys if store.claim(key, owner=owner, lease_seconds=LEASE)]

    threads = [threading.Thread(target=worker, args=pair) for pair in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(won["a"]).isdisjoint(won["b"])
    assert sorted(won["a"] + won["b"]) == sorted(keys)
    for key in keys:
        assert [kind for kind, _ in history(second, key)].count("claim") == 1


def child_claim(raw: str) -> None:
    """Child process: claim every unfinished job, finish the ones won, report them."""
    args = json.loads(raw)
    store = open_store(args["spec"])
    print("ready", flush=True)
    while not os.path.exists(args["go"]):
        time.sleep(0.002)
    won = []
    for record in store.records("unfinished"):
        if store.claim(record.key, owner=args["owner"], lease_seconds=LEASE):
            store.record_finished(record.key, state="completed", result={"by": args["owner"]}, error=None)
            won.append(record.key)
    store.close()
    print(json.dumps(won))


def test_two_processes_collect_each_job_exactly_once(
    store: JobStore, ledger_spec: dict[str, str], tmp_path: Path
) -> None:
    keys = {f"k{i}" for i in range(40)}
    for key in keys:
        intent(store, key, owner=None)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, test_job_store; test_job_store.child_claim(sys.argv[1])",
                json.dumps({"spec": ledger_spec, "owner": owner, "go": str(go)}),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for owner in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.write_text("go")
    won = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        won.append(set(json.loads(out.strip().splitlines()[-1])))
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == keys
    for key in keys:
        record = store.get(key)
        assert record is not None and record.finished
        assert record.result == {"by": "a" if key in won[0] else "b"}
        assert [kind for kind, _ in history(store, key)] == ["intent", "claim", "finished"]


# ----------------------------------------------------------------------------------------------
# PostgreSQL only: owners' liveness across machines, the schema, selection
# ----------------------------------------------------------------------------------------------


def child_hold(raw: str) -> None:
    """Child process ("another machine"): start a job as ``owner``, then poll forever."""
    args = json.loads(raw)
    store = open_store({"kind": "postgres", "where": args["url"]})
    intent(store, args["key"], owner=args["owner"])
    print("ready", flush=True)
    while True:
        store.record_status(args["key"], state="queued", detail={}, owner=args["owner"], lease_seconds=LEASE)
        time.sleep(0.05)


def test_a_killed_workers_jobs_are_free_at_once_on_any_machine(pg_url: str) -> None:
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    args = {"url": pg_url, "key": "k1", "owner": "machine-a:4242:x"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, test_job_store; test_job_store.child_hold(sys.argv[1])",
            json.dumps(args),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    with PostgresJobStore(pg_url) as other:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            assert not other.claim("k1", owner="machine-b:1:y", lease_seconds=LEASE), "machine-a is alive"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while not other.claim("k1", owner="machine-b:1:y", lease_seconds=LEASE):
            assert time.monotonic() < deadline, "the dead worker's job never became free"
            time.sleep(0.01)
        record = other.get("k1")
        assert record is not None and record.owner == "machine-b:1:y"
        assert record.lease_until is not None and close_to_now(record.lease_until, LEASE + 5)


def taken_once_closed(store: JobStore, key: str, *, owner: str) -> None:
    """``owner`` claims ``key`` through ``store`` once the server has ended the session of the
    store that held it, which it closed (the locks go a moment after)."""
    deadline = time.monotonic() + 10
    while not store.claim(key, owner=owner, lease_seconds=LEASE):
        assert time.monotonic() < deadline, "closing the store did not free its claim"
        time.sleep(0.01)


def test_closing_a_store_frees_its_claims(pg_url: str) -> None:
    """(The server ends the closed session, and drops its locks, a moment later.)"""
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    with PostgresJobStore(pg_url) as first, PostgresJobStore(pg_url) as second:
        intent(first, "k1", owner="a")
        assert not second.claim("k1", owner="b", lease_seconds=LEASE)
        first.close()
        taken_once_closed(second, "k1", owner="b")
        first.open()
        assert not first.claim("k1", owner="a", lease_seconds=LEASE), "b is alive now"


def test_a_claim_is_held_until_another_takes_it_and_a_job_that_ended_by_its_last_claimant(
    pg_url: str,
) -> None:
    """Whether a worker may collect a job: one another worker claimed is not its own any more,
    even once ended; one whose end was recorded without a claim (a webhook receiver on another
    worker) still is."""
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    with PostgresJobStore(pg_url) as first, PostgresJobStore(pg_url) as second:
        intent(first, "k1", owner="a")
        first.record_submitted("k1", job_id="j1", job=None, owner="a", lease_seconds=5)
        assert first.holds("k1", owner="a", lease_seconds=LEASE)
        record = first.get("k1")
        assert record is not None and close_to_now(record.lease_until, LEASE + 5), "not renewed"
        assert not second.holds("k1", owner="b", lease_seconds=LEASE)
        first.close()
        taken_once_closed(second, "k1", owner="b")
        first.open()
        assert not first.holds("k1", owner="a", lease_seconds=LEASE)
        assert second.holds("k1", owner="b", lease_seconds=LEASE)
        second.record_finished("k1", state="completed", result={}, error=None)
        assert second.holds("k1", owner="b", lease_seconds=LEASE)
        assert not first.holds("k1", owner="a", lease_seconds=LEASE)
        assert [e.kind for e in first.events("k1")].count("claim") == 1

        intent(first, "k2", owner="a")
        second.record_finished("k2", state="completed", result={}, error=None)
        assert first.holds("k2", owner="a", lease_seconds=LEASE)
        assert not second.claim("k2", owner="b", lease_seconds=LEASE), "an ended job is claimed"

        intent(first, "k3", owner="a")  # taken by b, then back by a, then ended by a delivery
        first.close()
        taken_once_closed(second, "k3", owner="b")
        second.close()
        first.open()
        taken_once_closed(first, "k3", owner="a")
        second.open()
        second.record_finished("k3", state="completed", result={}, error=None)
        assert first.holds("k3", owner="a", lease_seconds=LEASE)
        assert not second.holds("k3", owner="b", lease_seconds=LEASE)


def test_holding_a_claim_takes_back_a_lock_its_dropped_connection_lost(pg_url: str) -> None:
    """The liveness connection is checked at once, not at its next periodic check: once
    ``holds`` answers yes, another worker can no longer take the job."""
    import psycopg

    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    with (
        PostgresJobStore(pg_url) as first,
        PostgresJobStore(pg_url) as second,
        psycopg.connect(pg_url, autocommit=True) as admin,
    ):
        intent(first, "k1", owner="a")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() != (0,):
            assert time.monotonic() < deadline, "the lock was never dropped"
            time.sleep(0.01)
        assert first.holds("k1", owner="a", lease_seconds=LEASE)
        assert not second.claim("k1", owner="b", lease_seconds=LEASE), "the lock was not taken back"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_uses_its_own_connections(pg_url: str) -> None:
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    with PostgresJobStore(pg_url) as store:
        intent(store, "parent", owner="parent:1:a")
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                intent(store, "child", owner="child:2:b")
                assert not store.claim("parent", owner="child:2:b", lease_seconds=LEASE)
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        store.record_status("parent", state="queued", detail={}, owner="parent:1:a", lease_seconds=LEASE)
        assert [r.key for r in store.records()] == ["parent", "child"]
        assert store.claim("child", owner="parent:1:a", lease_seconds=LEASE), "the child is gone"


def test_the_schema_is_migrated_once_by_many_workers_at_once(pg_url: str) -> None:
    import psycopg

    from tarash.tarash_gateway._ledger.postgres import SCHEMA_VERSION, PostgresJobStore

    manual = PostgresJobStore(pg_url, migrate=False)
    with pytest.raises(psycopg.ProgrammingError, match="run `tarash jobs migrate`"):
        manual.open()
    assert manual.schema_version() == 0
    manual.close()
    stores = [PostgresJobStore(pg_url) for _ in range(6)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_at_once(store: PostgresJobStore) -> None:
        start.wait()
        try:
            store.open()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_at_once, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert [store.schema_version() for store in stores] == [SCHEMA_VERSION] * len(stores)
        assert stores[0].migrate() == SCHEMA_VERSION
        with psycopg.connect(pg_url) as conn:
            applied = conn.execute("SELECT version FROM tarash_schema ORDER BY version").fetchall()
            assert applied == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
    finally:
        for store in stores:
            store.close()


def test_old_finished_jobs_are_pruned_when_a_worker_starts(pg_url: str) -> None:
    import psycopg

    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    with PostgresJobStore(pg_url) as store:
        for key in ("old", "recent", "stuck"):
            intent(store, key, owner=None)
        for key in ("old", "recent"):
            store.record_finished(key, state="completed", result={}, error=None)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "UPDATE tarash_jobs SET finished_at = finished_at - interval '31 days' WHERE key = 'old'"
        )
        conn.execute(
            "UPDATE tarash_jobs SET created_at = created_at - interval '31 days' WHERE key = 'stuck'"
        )
    with PostgresJobStore(pg_url, retention_days=None) as keeping:
        assert len(keeping.records()) == 3
    with PostgresJobStore(pg_url) as reopened:
        assert [r.key for r in reopened.records()] == ["stuck", "recent"]
        assert reopened.events("old") == []


def test_tarash_ledger_selects_the_database(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tarash.tarash_gateway import generate_video, list_jobs, set_ledger
    from tarash.tarash_gateway._ledger import ledger_path
    from tarash.tarash_gateway.jobs import PostgresJobStore, get_ledger
    from tarash.tarash_gateway.models import MockConfig, MockPollingConfig, VideoGenerationConfig
    from tarash.tarash_gateway.models import VideoGenerationRequest as Request

    polling = MockPollingConfig(status_sequence=("queued", "completed"), delay_between_updates=0.01)
    config = VideoGenerationConfig(model="mock", provider="mock", mock=MockConfig(polling=polling))
    monkeypatch.setenv("TARASH_LEDGER", pg_url)
    set_ledger(None)
    try:
        store = get_ledger()
        assert isinstance(store, PostgresJobStore)
        assert ledger_path() is None
        assert get_ledger() is store
        generate_video(config, Request("from the environment"))
        [record] = list_jobs()
        assert (record.state, record.finished, record.owner) == ("completed", True, None)
        assert [e.kind for e in store.events(record.key)] == [
            "intent",
            "submitted",
            "status",
            "status",
            "finished",
        ]
        password_url = pg_url.replace("tarash@", "tarash:s3cret-pw@")
        set_ledger(password_url)
        chosen = get_ledger()
        assert isinstance(chosen, PostgresJobStore) and chosen is not store
        assert "s3cret" not in repr(chosen)
        assert repr(chosen) == f"PostgresJobStore('{pg_url.replace('tarash@', '')}')"
        assert [r.key for r in list_jobs()] == [record.key]
    finally:
        set_ledger(None)


def test_tarash_jobs_migrate(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tarash.tarash_gateway.cli import main

    shown = pg_url.replace("tarash@", "")
    assert main(["jobs", "migrate", pg_url]) == 0
    assert (
        capsys.readouterr().out
        == f"Migrated the ledger schema in PostgresJobStore('{shown}') from version 0 to 3.\n"
    )
    monkeypatch.setenv("TARASH_LEDGER", pg_url)
    assert main(["jobs", "migrate"]) == 0
    assert (
        capsys.readouterr().out
        == f"The ledger schema in PostgresJobStore('{shown}') is up to date (version 3).\n"
    )
    monkeypatch.setenv("TARASH_LEDGER", "/tmp/jobs.db")
    assert main(["jobs", "migrate"]) == 2
    assert capsys.readouterr().err == (
        "tarash: error: tarash jobs migrate upgrades a PostgreSQL ledger: pass its postgresql:// URL "
        "or set TARASH_LEDGER to it (a SQLite ledger upgrades itself)\n"
    )
    gone = pg_url.rsplit("/", 1)[0] + "/no_such_database"
    assert main(["jobs", "migrate", gone]) == 2
    assert capsys.readouterr().err.startswith(
        f"tarash: error: cannot migrate PostgresJobStore('{shown.rsplit('/', 1)[0]}/no_such_database'): "
        'OperationalError: connection failed: connection to server at "127.0.0.1", port '
    )


def test_without_the_postgres_extra_the_ledger_is_off_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tarash.tarash_gateway import set_ledger
    from tarash.tarash_gateway.jobs import get_ledger

    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "tarash.tarash_gateway._ledger.postgres", raising=False)
    url = "postgresql://nobody@127.0.0.1:9/without_the_extra"
    monkeypatch.setenv("TARASH_LEDGER", url)
    set_ledger(None)
    try:
        assert get_ledger() is None
        assert [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"] == [
            "Tarash job ledger is off: A PostgreSQL job ledger needs psycopg: "
            "pip install 'tarash-core[postgres]'"
        ]
        with pytest.raises(ImportError, match=r"needs psycopg: pip install 'tarash-core\[postgres\]'"):
            set_ledger(url)
    finally:
        set_ledger(None)
