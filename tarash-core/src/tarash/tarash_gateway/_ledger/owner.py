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
_owner: str | None = None


def process_owner() -> str:
    """This process's owner id: ``host:pid:random`` (new after a fork). Every ledger write asks
    for it, so it is kept, not rebuilt: a fork forgets it (``os.register_at_fork``), instead of
    each call comparing the process id (a system call) with the one it was made in."""
    owner = _owner
    return owner if owner is not None else _new_owner()


def _new_owner() -> str:
    global _owner
    with _owner_lock:
        if _owner is None:
            _owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        return _owner


def _forget_owner() -> None:
    global _owner
    _owner = None


if hasattr(os, "register_at_fork"):  # POSIX: the only systems that fork
    os.register_at_fork(after_in_child=_forget_owner)


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
