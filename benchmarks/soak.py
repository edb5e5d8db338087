"""A long-running worker's resources: does anything grow, round after round?

Each round does what long-running programs do: one ``asyncio.run`` of ``--jobs`` concurrent
async generations on the default gateway (a worker that runs each batch in a fresh event loop),
then a ``Gateway`` made for the round (a gateway per request) that makes one sync generation
with an async progress callback (so it starts its background loop) and one async generation,
and is closed. The jobs go to ``core_load.py``'s local job server (HTTP on 127.0.0.1, run in a
thread of its own) through core's transport, with the ledger off, on a SQLite file and on
PostgreSQL (a throwaway cluster; needs the server binaries and the postgres extra).

After ``--warmup`` rounds it prints, per ledger, what changed over ``--rounds`` more: event
loops still alive (after a collection), threads, open file descriptors, PostgreSQL sessions of
the client, and resident memory. Target: nothing grows with the rounds (resident memory grows
while SQLite's page cache fills, up to its 2 MiB: on a SQLite ledger it levels off within a few
hundred rounds).

    python benchmarks/soak.py [--rounds 200] [--warmup 5] [--jobs 5] [--ledgers off,sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from tarash.tarash_gateway import Gateway, generate_video_async, set_ledger
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_intent import opened
from core_load import LoadPlugin, Server

#: Seconds to let idle threads and connections end before counting (the ledger's writer thread
#: and a loop's idle database connection end after 2 s without work).
SETTLE_SECONDS = 2.5


@contextmanager
def job_server() -> Iterator[str]:
    """core_load's job server on a loop of its own thread; its base URL."""
    loop = asyncio.new_event_loop()
    server = Server(fault_rate=0.0, polls_to_finish=3)
    listener = loop.run_until_complete(asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=512))
    thread = threading.Thread(target=loop.run_forever, name="job-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        listener.close()
        loop.run_until_complete(server.close_connections())
        loop.close()


def one_round(config: VideoGenerationConfig, jobs: int, store: Any) -> None:
    async def batch() -> None:
        await asyncio.gather(
            *(generate_video_async(config, VideoGenerationRequest(prompt=f"p{i}")) for i in range(jobs))
        )

    asyncio.run(batch())
    gateway = Gateway(discover=False, ledger=store if store is not None else "off")
    gateway.register_plugin(LoadPlugin(), "loadtest")

    async def progress(update: Any) -> None:
        await asyncio.sleep(0)

    gateway.generate_video(config, VideoGenerationRequest(prompt="sync"), on_progress=progress)
    asyncio.run(gateway.generate_video_async(config, VideoGenerationRequest(prompt="async")))
    gateway.close()


def sessions(url: str | None) -> int:
    """Client sessions on the PostgreSQL database but the counting one (0 without one)."""
    if url is None:
        return 0
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row is not None else 0


def snapshot(url: str | None, server_loops: int) -> dict[str, float]:
    time.sleep(SETTLE_SECONDS)
    gc.collect()
    loops = sum(isinstance(o, asyncio.AbstractEventLoop) for o in gc.get_objects()) - server_loops
    rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return {
        "event loops alive": loops,
        "threads": threading.active_count(),
        "open fds": len(os.listdir("/proc/self/fd")),
        "PostgreSQL sessions": sessions(url),
        "RSS (MiB)": rss_pages * resource.getpagesize() / 2**20,
    }


def soak(kind: str, rounds: int, warmup: int, jobs: int) -> None:
    with job_server() as base_url, opened(kind) if kind != "off" else nullcontext() as store:
        url = getattr(store, "url", None)
        set_ledger(store if store is not None else "off")
        plugin = LoadPlugin()
        HOST.register_plugin_object(plugin, "loadtest")
        config = VideoGenerationConfig(
            provider="loadtest", model="m", base_url=base_url, poll_interval=0.01, timeout=60
        )
        try:
            for _ in range(warmup):
                one_round(config, jobs, store)
            before = snapshot(url, server_loops=1)
            started = time.perf_counter()
            for _ in range(rounds):
                one_round(config, jobs, store)
            seconds = time.perf_counter() - started
            after = snapshot(url, server_loops=1)
        finally:
            HOST.unregister_plugin_object(plugin)
            set_ledger("off")
    print(f"\n== ledger {kind}: {rounds} rounds after {warmup} warm-up rounds ({seconds:.1f} s)")
    for name, value in before.items():
        grown = after[name] - value
        per_round = f" ({grown / rounds * 1024:+.1f} KiB a round)" if name.startswith("RSS") else ""
        print(f"  {name:<20} {value:8.1f} -> {after[name]:8.1f}  ({grown:+.1f}){per_round}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--ledgers", default="off,sqlite,postgres")
    arguments = parser.parse_args()
    print(
        f"each round: asyncio.run of {arguments.jobs} async generations, then a gateway made, used and closed"
    )
    for kind in arguments.ledgers.split(","):
        soak(kind, arguments.rounds, arguments.warmup, arguments.jobs)


if __name__ == "__main__":
    main()
