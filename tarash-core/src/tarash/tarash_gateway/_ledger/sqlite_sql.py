"""The SQLite store's schema: its tables and indexes, the columns a version 1 file lacks, and the
connection's ``ops`` view through which its writes are made. Kept apart from :mod:`.sqlite`, which
runs them."""

from __future__ import annotations

__all__ = ["ADDED_COLUMNS", "BUDGET_SET", "OPS", "OPS_INSERT", "OPS_PER_INSERT", "PRAGMAS", "SCHEMA"]

#: What every connection to the file sets (WAL is the file's own, set when it is created).
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",  # the ops view: no temp file is needed
)

SCHEMA = (
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
        lease_until REAL,
        cost TEXT,
        billed TEXT
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
    """CREATE TABLE IF NOT EXISTS budgets (
        name TEXT PRIMARY KEY,
        budget TEXT NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at)",
)
#: The error of an intent row refused because the budget it names is set.
BUDGET_SET = "tarash: the budget the intent names is set"
#: The writes that change a job, as rows inserted into a view that each connection makes for
#: itself (TEMP): a trigger per kind of row makes the change (and adds the history row when it made
#: one), so a batch of writes is one statement. Each time SQLite's Python module runs a statement it
#: lets go of the interpreter lock and takes it back, and each time it does so from the ledger's
#: writer thread a busy event loop pays for the hand-over; rows of one statement cost none. A
#: row: (kind, key, state, s1, s2, s3, s4, s5, s6, owner, at, lease), the text columns meaning:
#:
#: - intent: provider, model, modality, config, request, cost; its ``state`` names the budget an
#:   event loop's intent was collected without checking (the row is refused when it is set)
#: - submitted: job_id, job, the history row's detail
#: - status: detail (the history row's, unless empty)
#: - finished: result, error (the history row's detail, unless empty)
#: - cancel: cancel (the history row's detail, unless empty)
#: - cost: cost
#: - event: the history row's kind and detail
OPS = (
    "CREATE TEMP VIEW IF NOT EXISTS ops (kind, key, state, s1, s2, s3, s4, s5, s6, owner, at, lease)"
    " AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS ops_intent INSTEAD OF INSERT ON ops WHEN NEW.kind = 'intent'
    BEGIN
        SELECT RAISE(ABORT, '{BUDGET_SET}')
        WHERE NEW.state IS NOT NULL AND EXISTS (SELECT 1 FROM budgets WHERE name = NEW.state);
        INSERT INTO jobs (key, provider, model, modality, state, config, request, detail,
                          created_at, updated_at, owner, lease_until, cost)
        VALUES (NEW.key, NEW.s1, NEW.s2, NEW.s3, 'submitting', NEW.s4, NEW.s5, '{{}}',
                NEW.at, NEW.at, NEW.owner, NEW.lease, NEW.s6);
        INSERT INTO events (key, at, kind, state) VALUES (NEW.key, NEW.at, 'intent', 'submitting');
    END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_submitted INSTEAD OF INSERT ON ops
    WHEN NEW.kind = 'submitted'
    BEGIN
        UPDATE jobs SET state = 'submitted', job_id = NEW.s1, job = NEW.s2, updated_at = NEW.at,
            finished_at = NULL, error = NULL,
            lease_until = CASE WHEN owner IS NEW.owner THEN NEW.lease ELSE lease_until END
        WHERE key = NEW.key AND (finished_at IS NULL OR state = 'unknown');
        INSERT INTO events (key, at, kind, state, detail)
        SELECT NEW.key, NEW.at, 'submitted', 'submitted', NEW.s3 WHERE changes() > 0;
    END""",
    # The state first (a change is kept in the history); then the detail and the lease (which
    # rewrites the same values when the state changed).
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_status INSTEAD OF INSERT ON ops WHEN NEW.kind = 'status'
    BEGIN
        UPDATE jobs SET state = NEW.state
        WHERE key = NEW.key AND finished_at IS NULL AND state IS NOT NEW.state;
        INSERT INTO events (key, at, kind, state, detail)
        SELECT NEW.key, NEW.at, 'status', NEW.state, NULLIF(NEW.s1, '{}') WHERE changes() > 0;
        UPDATE jobs SET detail = NEW.s1, updated_at = NEW.at,
            lease_until = CASE WHEN owner IS NEW.owner THEN NEW.lease ELSE lease_until END
        WHERE key = NEW.key AND finished_at IS NULL;
    END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_finished INSTEAD OF INSERT ON ops WHEN NEW.kind = 'finished'
    BEGIN
        UPDATE jobs SET state = NEW.state, result = NEW.s1, error = NEW.s2, updated_at = NEW.at,
            finished_at = NEW.at, owner = NULL, lease_until = NULL
        WHERE key = NEW.key AND (finished_at IS NULL OR state = 'unknown' OR NEW.state = 'completed');
        INSERT INTO events (key, at, kind, state, detail)
        SELECT NEW.key, NEW.at, 'finished', NEW.state, NULLIF(NEW.s2, '{}') WHERE changes() > 0;
    END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_cancel INSTEAD OF INSERT ON ops WHEN NEW.kind = 'cancel'
    BEGIN
        UPDATE jobs SET cancel = NEW.s1, updated_at = NEW.at WHERE key = NEW.key;
        INSERT INTO events (key, at, kind, detail)
        SELECT NEW.key, NEW.at, 'cancel', NULLIF(NEW.s1, '{}') WHERE changes() > 0;
    END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_cost INSTEAD OF INSERT ON ops WHEN NEW.kind = 'cost'
    BEGIN
        UPDATE jobs SET cost = NEW.s1 WHERE key = NEW.key;
    END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS ops_event INSTEAD OF INSERT ON ops WHEN NEW.kind = 'event'
    BEGIN
        INSERT INTO events (key, at, kind, state, detail) VALUES (NEW.key, NEW.at, NEW.s1, NEW.state, NEW.s2);
    END""",
)
#: The rows one statement inserts into ``ops`` (12 parameters each, well within SQLite's limit on
#: a statement's parameters).
OPS_PER_INSERT = 500
OPS_INSERT = "INSERT INTO ops VALUES "

#: Version 1 -> 2: the columns a version 1 ``jobs`` table lacks (the budgets table and the index
#: come with ``SCHEMA``).
ADDED_COLUMNS = (("cost", "TEXT"), ("billed", "TEXT"))
