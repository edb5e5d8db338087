"""What a budget costs on the submit path: sequential mock generations with the ledger on.

Each generation records its intent (with its estimate) before the submit; with a budget set the
store also checks it in the same transaction. Runs, per ledger (a SQLite file; a throwaway
PostgreSQL cluster like the tests' one, needs the server binaries and the postgres extra), ``N``
priced mock generations without a budget and then with one, and prints the time per generation
and the store calls (and seconds inside them) per generation.

    python benchmarks/budget_intent.py [--generations 300] [--ledgers sqlite,postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.jobs import SQLiteJobStore
from tarash.tarash_gateway.models import MockConfig, VideoGenerationConfig, VideoGenerationRequest


class TimedStore:
    """A JobStore that forwards every call to ``store`` and adds up the time spent in them."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls = 0
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if not callable(method):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        return timed


@contextmanager
def opened(kind: str) -> Iterator[Any]:
    with ExitStack() as stack:
        if kind == "sqlite":
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield stack.enter_context(SQLiteJobStore(directory / "jobs.db"))
            return
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tarash-core" / "tests"))
        import pg

        from tarash.tarash_gateway.jobs import PostgresJobStore

        url = stack.enter_context(pg.throwaway_cluster()).create_database("bench")
        yield stack.enter_context(PostgresJobStore(url))


def run(store: Any, generations: int, budget: bool) -> tuple[float, float, float]:
    """Median ms per generation, store calls and ms in the store per generation."""
    timed = TimedStore(store)
    gateway = Gateway(ledger=timed)
    gateway.set_budget("1000000" if budget else None, period="month")
    config = VideoGenerationConfig(
        provider="mock", model="mock", mock=MockConfig(price="0.05", polling={"delay_between_updates": 0})
    )
    request = VideoGenerationRequest(prompt="x", duration_seconds=4)
    gateway.generate_video(config, request)  # warm up: imports, pools, prices
    timed.calls, timed.seconds = 0, 0.0
    times = []
    for _ in range(generations):
        started = time.perf_counter()
        gateway.generate_video(config, request)
        times.append(time.perf_counter() - started)
    gateway.set_budget(None)
    return statistics.median(times) * 1000, timed.calls / generations, timed.seconds * 1000 / generations


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--ledgers", default="sqlite,postgres")
    arguments = parser.parse_args()
    print(f"{'ledger':<10} {'budget':<7} {'ms/gen (median)':>16} {'store calls/gen':>16} {'ms in store':>12}")
    for kind in arguments.ledgers.split(","):
        with opened(kind) as store:
            for budget in (False, True):
                ms, calls, in_store = run(store, arguments.generations, budget)
                label = "yes" if budget else "no"
                print(f"{kind:<10} {label:<7} {ms:>16.2f} {calls:>16.2f} {in_store:>12.2f}")
