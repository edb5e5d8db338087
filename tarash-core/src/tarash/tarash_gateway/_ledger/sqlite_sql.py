"""The SQLite store's schema: its tables and indexes, the columns a version 1 file lacks, and how
many history rows one statement adds. Kept apart from :mod:`.sqlite`, which runs them."""

from __future__ import annotations

__all__ = ["ADDED_COLUMNS", "EVENTS_PER_INSERT", "SCHEMA"]

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
#: History rows added by one statement at the end of a batch (5 parameters each, well within
#: SQLite's limit on a statement's parameters).
EVENTS_PER_INSERT = 500
#: Version 1 -> 2: the columns a version 1 ``jobs`` table lacks (the budgets table and the index
#: come with ``SCHEMA``).
ADDED_COLUMNS = (("cost", "TEXT"), ("billed", "TEXT"))
