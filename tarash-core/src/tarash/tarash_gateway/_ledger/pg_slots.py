"""Fleet-wide concurrency slots in PostgreSQL: session advisory locks (see ``_fleet``).

Each held slot keeps a connection of its own (a session lock is the connection's; a connection
that holds none is kept for the next ``take``). The database frees a slot when its connection
ends, so a worker that dies, or loses the database, frees its slots without anyone's help.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg

from .._fleet import slot_name

__all__ = ["PgSlots"]

_TRY = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"


class PgSlots:
    """The fleet slots of one PostgreSQL database (``url``), for this process."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"PgSlots(idle={len(self._idle)})"

    def _connection(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child leaves its parent's connections alone and opens its own.
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout)

    def _keep(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if not conn.closed:
                self._idle.append(conn)

    def take(self, scope: str, limit: int) -> tuple[psycopg.Connection[Any], str] | None:
        """A free slot of ``scope``'s ``limit`` (its connection and name), None when all are held."""
        conn = self._connection()
        try:
            for number in range(limit):
                name = slot_name(scope, number)
                row = conn.execute(_TRY, (name,)).fetchone()
                if row is not None and row[0]:
                    return conn, name
        except BaseException:
            conn.close()
            raise
        self._keep(conn)
        return None

    def give(self, slot: tuple[psycopg.Connection[Any], str]) -> None:
        """Free the slot; its connection is kept for the next ``take`` (closed when that fails)."""
        conn, name = slot
        try:
            conn.execute(_UNLOCK, (name,))
        except psycopg.Error:
            conn.close()
            return
        self._keep(conn)

    def close(self) -> None:
        """Close the idle connections (held slots stay with their holders)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
