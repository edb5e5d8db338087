"""The PostgreSQL store's SQL: the schema's migrations (and applying them) and the statement of
each write.

Every write alone is one statement (a CTE that updates the job and appends its history event);
a batch of the writes that change a job is one call of the schema's ``tarash_apply_ops``, which
makes them in order (:data:`ALONE` pairs each kind of write with its statement). Status writes and
releases commit asynchronously. Kept apart from :mod:`.postgres`, which runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ALONE",
    "APPLY",
    "ASYNC_COMMIT",
    "BILLED",
    "BUDGET_SET",
    "CANCEL",
    "CLAIM",
    "COLUMNS",
    "COST",
    "EVENT",
    "FINISHED",
    "HOLD",
    "INTENT",
    "KEEPALIVES",
    "LEASE",
    "LOCK_BUDGET",
    "LOCK_OWNER",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "NOW",
    "RECORDED",
    "RELEASE",
    "SCHEMA_VERSION",
    "STATUS",
    "SUBMITTED",
    "SYNC_COMMIT",
    "UNBUDGETED_INTENT",
    "applied_version",
    "apply_migrations",
    "intent_sql",
]

#: Each migration is a list of statements, applied in one transaction; never edit a released one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tarash_jobs (
            key text PRIMARY KEY,
            provider text NOT NULL,
            model text NOT NULL,
            modality text NOT NULL,
            state text NOT NULL,
            job_id text,
            job json,
            config json,
            request json,
            result json,
            error json,
            detail json,
            cancel json,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            finished_at timestamptz,
            owner text,
            lease_until timestamptz
        )""",
        "CREATE INDEX tarash_jobs_unfinished ON tarash_jobs (created_at) WHERE finished_at IS NULL",
        "CREATE INDEX tarash_jobs_finished ON tarash_jobs (finished_at)",
        "CREATE INDEX tarash_jobs_job_id ON tarash_jobs (job_id)",
        """CREATE TABLE tarash_job_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key text NOT NULL,
            at timestamptz NOT NULL,
            kind text NOT NULL,
            state text,
            detail json
        )""",
        "CREATE INDEX tarash_job_events_key ON tarash_job_events (key, id)",
    ),
    (
        "ALTER TABLE tarash_jobs ADD COLUMN cost json",
        "ALTER TABLE tarash_jobs ADD COLUMN billed json",
        "CREATE INDEX tarash_jobs_created ON tarash_jobs (created_at)",
        """CREATE TABLE tarash_budgets (
            name text PRIMARY KEY,
            budget json NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
    ),
    (
        # The writes that change a job, made in order from a JSON array of ops, each an object
        # with its "op" and its values (JSON values as text; jsonb, so that each op is parsed
        # once, not once per value read). An intent naming a budget that is set raises, undoing
        # them all. Only a list of statuses and releases lets the transaction commit without
        # waiting for the WAL flush.
        """CREATE FUNCTION tarash_apply_ops(ops jsonb) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            o jsonb;
            at timestamptz;
            lease timestamptz;
            before text;
            durable boolean := false;
        BEGIN
            FOR o IN SELECT value FROM jsonb_array_elements(ops) LOOP
                at := clock_timestamp();
                durable := durable OR o->>'op' NOT IN ('status', 'release');
                lease := at + (o->>'lease')::float8 * interval '1 second';
                CASE o->>'op'
                WHEN 'intent' THEN
                    INSERT INTO tarash_jobs (key, provider, model, modality, state, config, request,
                        detail, created_at, updated_at, owner, lease_until, cost)
                    SELECT o->>'key', o->>'provider', o->>'model', o->>'modality', 'submitting',
                        (o->>'config')::json, (o->>'request')::json, '{}', at, at, o->>'owner',
                        CASE WHEN o->>'owner' IS NULL THEN NULL ELSE lease END, (o->>'cost')::json
                    WHERE o->>'budget' IS NULL
                        OR NOT EXISTS (SELECT 1 FROM tarash_budgets WHERE name = o->>'budget');
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'A budget was set while the batch ran' USING ERRCODE = 'TRBDG';
                    END IF;
                    INSERT INTO tarash_job_events (key, at, kind, state)
                    VALUES (o->>'key', at, 'intent', 'submitting');
                WHEN 'submitted' THEN
                    UPDATE tarash_jobs SET state = 'submitted', job_id = o->>'job_id',
                        job = (o->>'job')::json, updated_at = at, finished_at = NULL, error = NULL,
                        lease_until = CASE WHEN owner IS NOT DISTINCT FROM o->>'owner' THEN lease
                                      ELSE lease_until END
                    WHERE key = o->>'key' AND (finished_at IS NULL OR state = 'unknown');
                    IF FOUND THEN
                        INSERT INTO tarash_job_events (key, at, kind, state, detail)
                        VALUES (o->>'key', at, 'submitted', 'submitted', (o->>'event')::json);
                    END IF;
                WHEN 'status' THEN
                    PERFORM set_config('synchronous_commit', 'off', true);
                    SELECT state INTO before FROM tarash_jobs
                    WHERE key = o->>'key' AND finished_at IS NULL FOR UPDATE;
                    IF FOUND THEN
                        UPDATE tarash_jobs SET state = o->>'state', detail = (o->>'detail')::json,
                            updated_at = at,
                            lease_until = CASE WHEN owner IS NOT DISTINCT FROM o->>'owner' THEN lease
                                          ELSE lease_until END
                        WHERE key = o->>'key';
                        IF before IS DISTINCT FROM o->>'state' THEN
                            INSERT INTO tarash_job_events (key, at, kind, state, detail)
                            VALUES (o->>'key', at, 'status', o->>'state', (o->>'event')::json);
                        END IF;
                    END IF;
                WHEN 'cancel' THEN
                    UPDATE tarash_jobs SET cancel = (o->>'detail')::json, updated_at = at
                    WHERE key = o->>'key';
                    IF FOUND THEN
                        INSERT INTO tarash_job_events (key, at, kind, detail)
                        VALUES (o->>'key', at, 'cancel', (o->>'event')::json);
                    END IF;
                WHEN 'event' THEN
                    INSERT INTO tarash_job_events (key, at, kind, detail)
                    SELECT key, at, o->>'kind', (o->>'detail')::json FROM tarash_jobs
                    WHERE key = o->>'key';
                WHEN 'finished' THEN
                    UPDATE tarash_jobs SET state = o->>'state', result = (o->>'result')::json,
                        error = (o->>'error')::json, updated_at = at, finished_at = at,
                        owner = NULL, lease_until = NULL
                    WHERE key = o->>'key'
                        AND (finished_at IS NULL OR state = 'unknown' OR o->>'state' = 'completed');
                    IF FOUND THEN
                        INSERT INTO tarash_job_events (key, at, kind, state, detail)
                        VALUES (o->>'key', at, 'finished', o->>'state', (o->>'error')::json);
                    END IF;
                WHEN 'cost' THEN
                    UPDATE tarash_jobs SET cost = (o->>'cost')::json WHERE key = o->>'key';
                WHEN 'release' THEN
                    PERFORM set_config('synchronous_commit', 'off', true);
                    UPDATE tarash_jobs SET owner = NULL, lease_until = NULL
                    WHERE key = o->>'key' AND owner = o->>'owner';
                END CASE;
            END LOOP;
            IF durable THEN
                PERFORM set_config('synchronous_commit', 'on', true);
            END IF;
        END $$""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_LOCK = "tarash.ledger.schema"

COLUMNS = (
    "key, provider, model, modality, state, job_id, job::text, config::text, request::text,"
    " result::text, error::text, detail::text, cancel::text, extract(epoch FROM created_at)::float8,"
    " extract(epoch FROM updated_at)::float8, extract(epoch FROM finished_at)::float8, owner,"
    " extract(epoch FROM lease_until)::float8, cost::text, billed::text"
)
NOW = "statement_timestamp()"
LEASE = f"{NOW} + %(lease)s * interval '1 second'"
#: Makes a list of writes, a batch's (a JSON array of ops, see migration 3).
APPLY = "SELECT tarash_apply_ops(%s::jsonb)"
#: Makes the statement's transaction commit without waiting for the WAL flush.
ASYNC_COMMIT = "_async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))"
#: Takes a process owner's advisory lock on the liveness connection (held while it lives).
LOCK_OWNER = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
#: Server-side keepalives on the liveness connection: a vanished machine's locks go in ~1 min.
KEEPALIVES = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"
#: Undoes ASYNC_COMMIT for the rest of a transaction (a batch that holds a status write).
SYNC_COMMIT = "SELECT set_config('synchronous_commit', 'on', true)"
#: The SQLSTATE tarash_apply_ops raises when an intent's budget was set meanwhile.
BUDGET_SET = "TRBDG"
EVENT = "INSERT INTO tarash_job_events (key, at, kind, state, detail)"


def intent_sql(guard: str) -> str:
    """The intent's insert (with its history event), made only when ``guard`` holds."""
    return f"""WITH job AS (
    INSERT INTO tarash_jobs (key, provider, model, modality, state, config, request, detail,
                             created_at, updated_at, owner, lease_until, cost)
    SELECT %(key)s, %(provider)s, %(model)s, %(modality)s, 'submitting', %(config)s::json,
           %(request)s::json, '{{}}', {NOW}, {NOW}, %(owner)s::text,
           CASE WHEN %(owner)s::text IS NULL THEN NULL ELSE {LEASE} END, %(cost)s::json
    {guard}
    RETURNING key, created_at)
{EVENT} SELECT key, created_at, 'intent', 'submitting', NULL FROM job RETURNING key"""


INTENT = intent_sql("")
#: The intent in one statement while no budget ``%(budget)s`` is set (no row when one is).
UNBUDGETED_INTENT = intent_sql("WHERE NOT EXISTS (SELECT 1 FROM tarash_budgets WHERE name = %(budget)s)")
LOCK_BUDGET = "SELECT budget::text FROM tarash_budgets WHERE name = %s FOR UPDATE"

SUBMITTED = f"""WITH job AS (
    UPDATE tarash_jobs SET state = 'submitted', job_id = %(job_id)s, job = %(job)s::json,
        updated_at = {NOW}, finished_at = NULL, error = NULL,
        lease_until = CASE WHEN owner IS NOT DISTINCT FROM %(owner)s::text THEN {LEASE}
                      ELSE lease_until END
    WHERE key = %(key)s AND (finished_at IS NULL OR state = 'unknown')
    RETURNING key, updated_at)
{EVENT} SELECT key, updated_at, 'submitted', 'submitted', %(event)s::json FROM job"""

STATUS = f"""WITH {ASYNC_COMMIT},
old AS (SELECT key, state FROM tarash_jobs WHERE key = %(key)s AND finished_at IS NULL FOR UPDATE),
job AS (
    UPDATE tarash_jobs j SET state = %(state)s, detail = %(detail)s::json, updated_at = {NOW},
        lease_until = CASE WHEN j.owner IS NOT DISTINCT FROM %(owner)s::text THEN {LEASE}
                      ELSE j.lease_until END
    FROM old, _async WHERE j.key = old.key
    RETURNING j.key, j.updated_at, old.state AS before)
{EVENT} SELECT key, updated_at, 'status', %(state)s, %(event)s::json FROM job
    WHERE before IS DISTINCT FROM %(state)s"""

CANCEL = f"""WITH job AS (
    UPDATE tarash_jobs SET cancel = %(detail)s::json, updated_at = {NOW} WHERE key = %(key)s
    RETURNING key, updated_at)
{EVENT} SELECT key, updated_at, 'cancel', NULL, %(event)s::json FROM job"""

RECORDED = f"""{EVENT} SELECT key, {NOW}, %(kind)s, NULL, %(detail)s::json FROM tarash_jobs
WHERE key = %(key)s"""

FINISHED = f"""WITH job AS (
    UPDATE tarash_jobs SET state = %(state)s, result = %(result)s::json, error = %(error)s::json,
        updated_at = {NOW}, finished_at = {NOW}, owner = NULL, lease_until = NULL
    WHERE key = %(key)s AND (finished_at IS NULL OR state = 'unknown' OR %(state)s = 'completed')
    RETURNING key, finished_at)
{EVENT} SELECT key, finished_at, 'finished', %(state)s, %(error)s::json FROM job"""

BILLED = f"""WITH job AS (
    UPDATE tarash_jobs SET billed = %(billed)s::json
    WHERE key = (SELECT key FROM tarash_jobs WHERE key = %(key)s OR job_id = %(key)s
                 ORDER BY created_at LIMIT 1)
    RETURNING key)
{EVENT} SELECT key, {NOW}, 'billed', NULL, %(billed)s::json FROM job RETURNING key"""

# The owner test is a CASE so that the advisory lock is only probed when nothing cheaper decides:
# taking the (transaction-scoped) lock succeeds only when no live process holds it.
CLAIM = f"""WITH target AS (
    SELECT key FROM tarash_jobs WHERE key = %(key)s AND finished_at IS NULL FOR UPDATE SKIP LOCKED),
job AS (
    UPDATE tarash_jobs j SET owner = %(owner)s, lease_until = {LEASE}
    FROM target WHERE j.key = target.key AND CASE
        WHEN j.owner IS NULL OR j.owner = %(owner)s OR j.owner = %(steal)s::text
             OR j.lease_until < {NOW} THEN true
        ELSE pg_try_advisory_xact_lock(hashtextextended(j.owner, 0)) END
    RETURNING j.key)
{EVENT} SELECT key, {NOW}, 'claim', NULL, %(event)s::json FROM job RETURNING key"""

#: Renews the claims of a JSON array of ``{"key", "owner", "lease"}`` their owners hold (a row, the
#: key, for each one held). A job that has ended is still held by its owner unless another owner
#: claimed it last: a webhook receiver on any worker records a job's end without claiming it, and
#: the worker polling the job collects it all the same; a worker that took the job over collects
#: it alone.
HOLD = f"""WITH asked AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS h(key text, owner text, lease float8)),
held AS (
    UPDATE tarash_jobs j SET lease_until = {NOW} + a.lease * interval '1 second'
    FROM asked a WHERE j.key = a.key AND j.owner = a.owner AND j.finished_at IS NULL RETURNING j.key)
SELECT key FROM held
UNION ALL
SELECT a.key FROM asked a JOIN tarash_jobs j ON j.key = a.key
WHERE j.finished_at IS NOT NULL AND a.owner = COALESCE((
    SELECT e.detail ->> 'owner' FROM tarash_job_events e
    WHERE e.key = a.key AND e.kind = 'claim' ORDER BY e.id DESC LIMIT 1), a.owner)"""

RELEASE = f"""WITH {ASYNC_COMMIT}
UPDATE tarash_jobs SET owner = NULL, lease_until = NULL FROM _async
WHERE key = %(key)s AND owner = %(owner)s"""

COST = "UPDATE tarash_jobs SET cost = %(cost)s::json WHERE key = %(key)s"

#: The statement that makes each op of ``tarash_apply_ops`` alone, from the op's values (an intent
#: with a ``budget`` is UNBUDGETED_INTENT). A batch calls the function instead: one statement
#: for all its writes. The two must make the same changes (``test_ledger_batch.py`` runs the
#: same writes both ways and compares).
ALONE = {
    "intent": INTENT,
    "submitted": SUBMITTED,
    "status": STATUS,
    "cancel": CANCEL,
    "event": RECORDED,
    "finished": FINISHED,
    "cost": COST,
    "release": RELEASE,
}


def applied_version(conn: psycopg.Connection[Any]) -> int:
    """The highest migration applied to the database on ``conn`` (0: none)."""
    row = conn.execute("SELECT to_regclass('tarash_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT coalesce(max(version), 0) FROM tarash_schema").fetchone()
    return int(found[0]) if found else 0


def apply_migrations(conn: psycopg.Connection[Any]) -> int:
    """Apply the missing migrations in one transaction, under an advisory lock (so many workers
    starting at once apply them once); the version after."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tarash_schema ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM tarash_schema").fetchone()
        current = int(row[0]) if row else 0
        for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO tarash_schema (version) VALUES (%s)", (version,))
        return max(current, SCHEMA_VERSION)
