"""Which process collects a job: this process's owner id, and whether another owner is alive."""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid

__all__ = ["owner_alive", "process_owner"]


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
