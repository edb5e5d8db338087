"""What one SQLite ledger write costs, alone and while another thread keeps the GIL busy.

The ledger's writer thread makes these calls while the event loop thread serves HTTP; this
separates the store's own cost from the cost of sharing the interpreter. Prints microseconds per
call for N jobs x (intent, submitted, status, finished), with nothing else running and with a
thread spinning in pure Python, each call its own transaction and --batch calls a transaction
(``store.batch()``, as the writer thread stores the writes it finds queued together). Every SQL
statement hands the interpreter to the other thread while SQLite runs it, and getting it back
costs up to ``sys.getswitchinterval()``: fewer statements a write is what counts.

    python benchmarks/store_calls.py [--jobs 1000] [--batch 50]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tarash.tarash_gateway.jobs import SQLiteJobStore

FIELDS: dict[str, Any] = {
    "provider": "p",
    "model": "m",
    "modality": "video",
    "config": {"provider": "p", "model": "m"},
    "request": {"prompt": "a lighthouse at dawn"},
    "owner": "bench",
    "lease_seconds": 600.0,
}


class NoBudget:
    """The budget check of a ledger with no budget set."""

    name = "default"

    def __call__(self, budget: Any, costs_since: Any) -> None:
        return None


CALLS: dict[str, Callable[[SQLiteJobStore, int], None]] = {
    "intent": lambda store, i: store.record_budgeted_intent(f"k{i}", check=NoBudget(), cost=None, **FIELDS),
    "submitted": lambda store, i: store.record_submitted(
        f"k{i}", job_id=f"j{i}", job={}, owner="bench", lease_seconds=600.0
    ),
    "status": lambda store, i: store.record_status(
        f"k{i}", state="processing", detail={"progress_percent": 10}, owner="bench", lease_seconds=600.0
    ),
    "finished": lambda store, i: store.record_finished(
        f"k{i}", state="completed", result={"video": "u"}, error=None
    ),
}


def run(jobs: int, batch: int) -> dict[str, float]:
    """Microseconds per call of each kind, for ``jobs`` jobs, ``batch`` calls a transaction
    (1: each its own, as a lone write is; more: inside ``store.batch()``, as the writer does)."""
    store = SQLiteJobStore(Path(tempfile.mkdtemp()) / "jobs.db").open()
    spent = dict.fromkeys(CALLS, 0.0)
    for first in range(0, jobs, batch):
        for name, call in CALLS.items():
            started = time.perf_counter()
            with store.batch() if batch > 1 else contextlib.nullcontext():
                for i in range(first, min(first + batch, jobs)):
                    call(store, i)
            spent[name] += time.perf_counter() - started
    store.close()
    return {name: seconds / jobs * 1e6 for name, seconds in spent.items()}


@contextlib.contextmanager
def gil_busy() -> Iterator[None]:
    """Another thread spinning in pure Python meanwhile, as a busy event loop does."""
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        yield
    finally:
        stop.set()
        spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50, help="calls a transaction in the batched runs")
    args = parser.parse_args()
    columns = {}
    for batch in (1, args.batch):
        columns[f"alone x{batch}"] = run(args.jobs, batch)
        with gil_busy():
            columns[f"GIL busy x{batch}"] = run(args.jobs, batch)
    print(
        f"microseconds per call; xN: N calls a transaction\n{'call':10s}"
        + "".join(f"{c:>15s}" for c in columns)
    )
    for name in CALLS:
        print(f"{name:10s}" + "".join(f"{column[name]:15.0f}" for column in columns.values()))


if __name__ == "__main__":
    main()
