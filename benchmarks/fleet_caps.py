"""What a fleet-wide concurrency cap costs on the submit path: sequential mock generations.

With a shared ledger a capped job also takes and gives back a fleet slot (``_fleet``: an advisory
lock on PostgreSQL, an ``flock`` beside a SQLite file). Runs, per ledger (a SQLite file; a
throwaway PostgreSQL cluster, needing the server binaries and the postgres extra), ``N`` mock
generations without a cap and then capped ``mock=4``, and prints the median time per generation.

    python benchmarks/fleet_caps.py [--generations 300] [--ledgers sqlite,postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.models import MockConfig, VideoGenerationConfig, VideoGenerationRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_intent import opened


def run(store: Any, generations: int, cap: bool) -> float:
    """Median ms per generation."""
    gateway = Gateway(ledger=store, concurrency={"mock": 4} if cap else {})
    config = VideoGenerationConfig(
        provider="mock", model="mock", mock=MockConfig(polling={"delay_between_updates": 0})
    )
    request = VideoGenerationRequest(prompt="x", duration_seconds=4)
    gateway.generate_video(config, request)  # warm up: imports, pools, the slot's connection
    times = []
    for _ in range(generations):
        started = time.perf_counter()
        gateway.generate_video(config, request)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--ledgers", default="sqlite,postgres")
    arguments = parser.parse_args()
    print(f"{'ledger':<10} {'cap':<7} {'ms/gen (median)':>16}")
    for kind in arguments.ledgers.split(","):
        with opened(kind) as store:
            for cap in (False, True):
                label = "mock=4" if cap else "none"
                print(f"{kind:<10} {label:<7} {run(store, arguments.generations, cap):>16.2f}")
