"""Progress display of ``tarash generate``.

On a terminal: one line redrawn in place (``\\r`` and an ANSI erase) with the status, the queue
position, a percentage bar and the elapsed time, refreshed by a ticker so the clock keeps running
between updates. Anywhere else (a pipe, a file, a CI log): one plain line per update, such as
``queued position=1`` or ``processing 40%``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "BAR_WIDTH",
    "ERASE_LINE",
    "TICK_SECONDS",
    "Progress",
    "is_live",
    "live_line",
    "plain_line",
]

BAR_WIDTH = 20
TICK_SECONDS = 0.2
ERASE_LINE = "\r\x1b[K"


def plain_line(status: str, queue_position: int | None, percent: float | None) -> str:
    """``queued position=1``, ``processing 40%``, ``completed 100%``, ``failed``…"""
    parts = [status]
    if queue_position is not None:
        parts.append(f"position={queue_position}")
    if percent is not None and status != "queued":
        parts.append(f"{int(percent)}%")
    return " ".join(parts)


def live_line(status: str, queue_position: int | None, percent: float | None, elapsed: float) -> str:
    """``processing [########------------]  40%  3.2s`` (the terminal form)."""
    filled = round(BAR_WIDTH * (percent or 0.0) / 100)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    where = f" (position {queue_position})" if queue_position is not None else ""
    shown = f"{int(percent):3d}%" if percent is not None else "   -"
    return f"{status}{where} [{bar}] {shown} {elapsed:5.1f}s"


def is_live(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that understands ``\\r`` and ANSI erase."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Progress:
    """The ``on_progress`` callback of the CLI; use it as a context manager around the call."""

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self.stream = stream
        self.live = live
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = time.monotonic()
        self._state: tuple[str, int | None, float | None] = ("submitting", None, None)
        self._broken = False

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.live:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, name="tarash-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is None:
            return
        self._stop.set()
        self._ticker.join()
        self._draw()
        self._write("\n")

    def __call__(self, update: Any) -> None:
        state = (str(update.status), update.queue_position, update.progress_percent)
        with self._lock:
            self._state = state
        if self.live:
            self._draw()
        else:
            self._write(plain_line(*state) + "\n")

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self._draw()

    def _draw(self) -> None:
        width = max(shutil.get_terminal_size().columns - 1, 10)
        with self._lock:
            text = live_line(*self._state, time.monotonic() - self._started)
            self._write(ERASE_LINE + text[:width])

    def _write(self, text: str) -> None:
        if self._broken:
            return
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                self._broken = True
