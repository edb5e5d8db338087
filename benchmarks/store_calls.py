"""What one SQLite ledger write costs, alone and while another thread keeps the GIL busy.

The ledger's writer thread makes these calls while the event loop thread serves HTTP; this
separates the store's own cost from the cost of sharing the interpreter. Prints microseconds per
call for N jobs x (intent, submitted, status, finished), first with nothing else running, then
with a thread spinning in pure Python.

    python benchmarks/store_calls.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
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


def run(jobs: int) -> dict[str, float]:
    store = SQLiteJobStore(Path(tempfile.mkdtemp()) / "jobs.db").open()
    spent = dict.fromkeys(("intent", "submitted", "status", "finished"), 0.0)
    for i in range(jobs):
        key = f"k{i}"
        marks = [time.perf_counter()]
        store.record_budgeted_intent(key, check=NoBudget(), cost=None, **FIELDS)
        marks.append(time.perf_counter())
        store.record_submitted(key, job_id=f"j{i}", job={}, owner="bench", lease_seconds=600.0)
        marks.append(time.perf_counter())
        store.record_status(
            key, state="processing", detail={"progress_percent": 10}, owner="bench", lease_seconds=600.0
        )
        marks.append(time.perf_counter())
        store.record_finished(key, state="completed", result={"video": "u"}, error=None)
        marks.append(time.perf_counter())
        for name, start, end in zip(spent, marks[:-1], marks[1:], strict=True):
            spent[name] += end - start
    store.close()
    return {name: seconds / jobs * 1e6 for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    idle = run(args.jobs)
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        busy = run(args.jobs)
    finally:
        stop.set()
        spinner.join()
    print(f"{'call':10s} {'alone (us)':>11s} {'GIL busy (us)':>14s}")
    for name in idle:
        print(f"{name:10s} {idle[name]:11.0f} {busy[name]:14.0f}")


if __name__ == "__main__":
    main()
