"""An event loop's connection to a SQLite ledger: a helper process that makes the loop's batches.

SQLite's Python driver has no asynchronous API, and a thread of the same process that makes a
busy event loop's writes costs that loop more than the writes do: each time it takes the
interpreter lock back, the loop waits for it, and on a virtual machine every hand-over between
CPUs wakes one (``benchmarks/core_load.py`` prints what one costs). A helper process has an
interpreter lock of its own. The loop collects its writes as rows of the ``ops`` view (the Python
work: the rows and their JSON) and sends each batch over a socket, as it would to PostgreSQL; the
helper inserts them in one transaction and answers. The helper is this file run by a bare
interpreter (``python -I -S``: no site, no Tarash import); it is told the file and its statements
when it starts, and ends when its socket closes.

The messages, each a 4-byte big-endian length and a :mod:`marshal` payload: the first, the setup
(the file, the busy timeout, the statements a connection runs first, the insert's SQL); then one
per batch, its rows. Each is answered by ``(status, text)``: ``OK``, ``BUDGET_SET`` (a collected
intent names a budget that is set: nothing was stored) or ``FAILED`` (nothing was stored; the
text says why).
"""

from __future__ import annotations

import marshal
import os
import struct
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket
    import sqlite3
    import subprocess

    from .records import BudgetsFoundSet

__all__ = ["SQLiteLoopConnection", "insert_rows"]

OK, BUDGET_SET, FAILED = 0, 1, 2
_LENGTH = struct.Struct(">I")
_HELPER = os.path.abspath(__file__)


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], insert: str, per: int) -> None:
    """Insert ``rows`` into the ``ops`` view, ``per`` a statement (``insert``, then one group of
    placeholders per row), in order."""
    marks = "(" + ", ".join(["?"] * len(rows[0])) + ")" if rows else ""
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(insert + ", ".join([marks] * len(chunk)), [value for row in chunk for value in row])


class SQLiteLoopConnection:
    """An event loop's connection to a SQLite ledger (a ``LoopConnection``): its helper process.
    It keeps no reference to the loop (it waits on its socket through the running loop), so a loop
    that is freed is not kept alive by it."""

    def __init__(
        self, process: subprocess.Popen[bytes], sock: socket.socket, budgets: BudgetsFoundSet
    ) -> None:
        self._process = process
        self._socket = sock
        self._budgets = budgets

    @classmethod
    async def start(cls, setup: dict[str, Any], budgets: BudgetsFoundSet) -> SQLiteLoopConnection:
        """Start a helper for the file ``setup`` names, and wait until it has opened it; a batch
        it refuses notes the budgets its intents name in ``budgets``."""
        connection = cls(*_spawn(), budgets)
        try:
            await connection._call(setup)
        except BaseException:
            connection.discard()
            raise
        return connection

    async def apply(self, collected: list[tuple[Any, ...]]) -> None:
        """Make ``collected`` in one transaction (see the module's docstring)."""
        # lazy: the helper runs this file outside the package, and imports nothing of Tarash
        from ..exceptions import LedgerError
        from .records import NeedsConnection

        status, text = await self._call(collected)
        if status == BUDGET_SET:
            self._budgets.note(
                row[2] for row in collected if row[0] == "intent"
            )  # an intent's state: its budget
            raise NeedsConnection
        if status != OK:
            raise LedgerError(f"The ledger's helper process did not store the batch: {text}")

    async def _call(self, message: Any) -> tuple[int, str]:
        import asyncio  # lazy: a loop is running, so asyncio is loaded already

        loop = asyncio.get_running_loop()
        payload = marshal.dumps(message)
        await loop.sock_sendall(self._socket, _LENGTH.pack(len(payload)) + payload)
        head = await self._receive(loop, _LENGTH.size)
        answer: tuple[int, str] = marshal.loads(await self._receive(loop, _LENGTH.unpack(head)[0]))
        return answer

    async def _receive(self, loop: Any, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = await loop.sock_recv(self._socket, size - len(data))
            if not chunk:
                raise ConnectionError(f"The ledger's helper process ended (exit code {self._process.poll()})")
            data += chunk
        return bytes(data)

    def discard(self) -> None:
        """Close the socket (the helper ends when it reads the end) and reap the helper once it has
        ended, on a thread of its own that only waits."""
        import threading  # lazy: the helper process needs no thread

        self._socket.close()
        threading.Thread(target=self._process.wait, name="tarash-ledger-reaper", daemon=True).start()


def _spawn() -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A helper process and the socket to it. Started by ``subprocess`` (a fork and exec that takes
    a millisecond or two), not by asyncio's subprocess API, whose transports hold the loop: a loop
    that is freed must be able to close its connection (see :mod:`.loop_queue`)."""
    # lazy: only a busy event loop's writes need a helper
    import socket
    import subprocess

    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", _HELPER], stdin=theirs.fileno(), stdout=theirs.fileno()
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ours.setblocking(False)
    return process, ours


def _serve() -> None:
    """The helper: open the file, then make each batch it is sent until its socket closes."""
    import sqlite3  # lazy: the parent's store imports it when it opens the file

    setup = _read()
    if setup is None:
        return
    conn = sqlite3.connect(setup["path"], timeout=setup["busy_seconds"], isolation_level=None)
    for statement in setup["statements"]:
        conn.execute(statement)
    _write((OK, ""))
    while (rows := _read()) is not None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            insert_rows(conn, rows, setup["insert"], setup["per"])
            if not conn.in_transaction:  # SQLite rolled it back itself (a full disk, an I/O error)
                raise sqlite3.OperationalError("SQLite rolled back the batch's transaction")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            budget = isinstance(exc, sqlite3.IntegrityError) and setup["budget_set"] in str(exc)
            _write((BUDGET_SET, "") if budget else (FAILED, f"{type(exc).__name__}: {exc}"))
        else:
            _write((OK, ""))


def _read() -> Any:
    """The next message on standard input (the socket), or None at its end."""
    head = _read_exactly(_LENGTH.size)
    if head is None:
        return None
    body = _read_exactly(_LENGTH.unpack(head)[0])
    return None if body is None else marshal.loads(body)


def _read_exactly(size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _write(answer: tuple[int, str]) -> None:
    payload = marshal.dumps(answer)
    data = _LENGTH.pack(len(payload)) + payload
    while data:
        data = data[os.write(1, data) :]


if __name__ == "__main__":
    _serve()
