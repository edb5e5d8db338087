"""tarash-fal against raw fal-client, on the same fake fal queue server.

Prints, for each client:

* sequential sync generations, raw and Tarash alternating (so both see the same machine load):
  median and mean time per generation, their ratio, and requests per generation;
* ``--concurrent`` async generations at once: wall time, peak RSS of the client process, TCP
  connections the server accepted, and requests per generation;
* cold start: a fresh bare interpreter (``python -c``) that imports its client and completes one
  generation, timed from spawn to exit (medians of ``--cold`` runs, raw and Tarash alternating),
  and split into the client's import, its first generation (which loads what it needs on first
  use: the plugins, the engine, httpx's connection pool, the ledger) and the rest (interpreter
  start and exit); beside them, three floors: the same requests sent by bare httpx; by bare
  httpx after importing attrs and pluggy (what tarash-core requires besides httpx); and by bare
  httpx after also defining as many attrs records as a Tarash generation's process does and
  committing a SQLite intent row before the submit (what its records and ledger cost at least).

The fake server (``tarash_fal.testing.FakeFalServer``) runs in its own process, and each scenario
in a fresh client process, so RSS and connection counts belong to that client alone. Raw
fal-client is pointed at the server with ``FAL_QUEUE_RUN_HOST`` and ``SSL_CERT_FILE`` (read when
it is imported) and uses one shared ``SyncClient`` / ``AsyncClient``; its ``subscribe`` without a
progress callback makes the same requests as a Tarash generation (1 submit, the status polls,
1 result).

Run: ``python benchmarks/fal_bench.py`` (two to three minutes). Targets: time ratio <= 1.05,
equal requests per generation, peak RSS <= 80 MiB and <= 100 connections for 1000 concurrent
generations, cold start <= 1.0x raw fal-client. Core's job ledger (on by default) adds SQLite
writes to every Tarash generation; ``TARASH_LEDGER=off`` measures the provider without it. The
clients get a fresh temporary ``TARASH_HOME``, so the default ledger they write is a new file in
it, not the user's own.

``--baseline DIR`` (another checkout's ``tarash-core/src``) also times that Tarash, put first on
``PYTHONPATH``, in the same run: its paired runs alternate with ours (``--rounds`` each, each with
its own raw fal-client reference) and its cold starts take turns with ours and raw fal-client's,
so a before/after comparison sees the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

MODEL = "fal-ai/veo3"
KINDS = ("submit", "status", "result", "cancel")


# ----------------------------------------------------------------------------------------------
# Server process
# ----------------------------------------------------------------------------------------------


def _serve(conn: Connection, queue_polls: int, processing_polls: int) -> None:
    try:
        from tarash_fal.testing import FakeFalServer

        server = FakeFalServer(queue_polls=queue_polls, processing_polls=processing_polls).start()
    except Exception:
        conn.send(traceback.format_exc())  # the parent fails with it instead of waiting forever
        return
    with server:
        conn.send((server.base_url, server.ca_path, server.api_key))
        while conn.recv() == "stats":
            conn.send((server.counts, server.connections))


class Server:
    """The fake server in a child process, asked for its counters over a pipe."""

    def __init__(self, queue_polls: int, processing_polls: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, queue_polls, processing_polls), daemon=True
        )
        self._process.start()
        answer = self._receive()
        if isinstance(answer, str):
            raise SystemExit(f"the fake fal server did not start (tarash-fal[testing] installed?):\n{answer}")
        self.base_url, self.ca_path, self.api_key = answer

    def _receive(self) -> Any:
        """The server's next answer; SystemExit if its process ends first (a dead child never
        answers, and a bare ``recv`` would wait forever)."""
        while not self._conn.poll(0.2):
            if not self._process.is_alive():
                raise SystemExit(f"the fake fal server process exited (code {self._process.exitcode})")
        return self._conn.recv()

    def stats(self) -> tuple[dict[str, int], int]:
        self._conn.send("stats")
        counts, connections = self._receive()
        return counts, connections

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(10)


# ----------------------------------------------------------------------------------------------
# Client processes (one per scenario)
# ----------------------------------------------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tarash_config(args: argparse.Namespace) -> Any:
    from tarash.tarash_gateway import VideoGenerationConfig

    return VideoGenerationConfig(
        model=MODEL,
        provider="fal",
        api_key=args.key,
        base_url=args.base_url,
        provider_config={"ca_bundle": args.ca},
        poll_interval=args.interval,
        timeout=300,
    )


def client_tarash_sequential(args: argparse.Namespace) -> dict[str, Any]:
    from tarash.tarash_gateway import VideoGenerationRequest, generate_video

    config = _tarash_config(args)
    request = VideoGenerationRequest(prompt="a cat")
    for _ in range(args.n):
        generate_video(config, request)
    return {}


def client_raw_sequential(args: argparse.Namespace) -> dict[str, Any]:
    import fal_client

    client = fal_client.SyncClient(key=args.key)
    for _ in range(args.n):
        client.subscribe(MODEL, {"prompt": "a cat"}, interval=args.interval)
    return {}


def client_paired(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate one raw and one Tarash generation, so both see the same machine load."""
    import fal_client

    from tarash.tarash_gateway import VideoGenerationRequest, generate_video

    config = _tarash_config(args)
    request = VideoGenerationRequest(prompt="a cat")
    client = fal_client.SyncClient(key=args.key)
    runs = {
        "raw": lambda: client.subscribe(MODEL, {"prompt": "a cat"}, interval=args.interval),
        "tarash": lambda: generate_video(config, request),
    }
    times: dict[str, list[float]] = {"raw": [], "tarash": []}
    for index in range(args.warmup + args.n):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            if index >= args.warmup:
                times[name].append(time.perf_counter() - started)
    return times


def client_tarash_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    from tarash.tarash_gateway import VideoGenerationRequest, generate_video_async

    config = _tarash_config(args)

    async def main() -> float:
        request = VideoGenerationRequest(prompt="a cat")
        started = time.perf_counter()
        results = await asyncio.gather(*(generate_video_async(config, request) for _ in range(args.n)))
        assert len({r.request_id for r in results}) == args.n
        return time.perf_counter() - started

    before = _rss_mib()
    return {"wall": asyncio.run(main()), "rss_before": before, "rss_peak": _rss_mib()}


def client_raw_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    import fal_client

    async def main() -> float:
        client = fal_client.AsyncClient(key=args.key)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.subscribe(MODEL, {"prompt": "a cat"}, interval=args.interval) for _ in range(args.n))
        )
        assert len(results) == args.n
        return time.perf_counter() - started

    before = _rss_mib()
    return {"wall": asyncio.run(main()), "rss_before": before, "rss_peak": _rss_mib()}


#: The cold-start clients, each run as ``python -c`` in a bare interpreter (``sys.argv[1:]``: base
#: URL, CA file, key, poll interval): run from this script, they would find its own imports
#: (asyncio, multiprocessing, argparse) already loaded and hide what a client loads itself.
COLD = {
    "tarash-cold": f"""
import sys, time
started = time.perf_counter()
from tarash.tarash_gateway import VideoGenerationConfig, VideoGenerationRequest, generate_video
base_url, ca, key, interval = sys.argv[1:]
config = VideoGenerationConfig(
    model={MODEL!r}, provider="fal", api_key=key, base_url=base_url,
    provider_config={{"ca_bundle": ca}}, poll_interval=float(interval), timeout=300,
)
request = VideoGenerationRequest(prompt="a cat")
imported = time.perf_counter()
generate_video(config, request)
ended = time.perf_counter()
import attrs  # after the clock: the records this process defined, for the "records" floor
records = [
    kind for module in list(sys.modules.values()) if module.__name__.startswith("tarash")
    for kind in vars(module).values()
    if isinstance(kind, type) and attrs.has(kind) and kind.__module__ == module.__name__
]
fields = sum(len(attrs.fields(kind)) for kind in records)
print(f'{{{{"import": {{imported - started}}, "generation": {{ended - imported}}, '
      f'"records": {{len(records)}}, "fields": {{fields}}}}}}')
""",
    "raw-cold": f"""
import sys, time
started = time.perf_counter()
import fal_client
client = fal_client.SyncClient(key=sys.argv[3])
imported = time.perf_counter()
client.subscribe({MODEL!r}, {{"prompt": "a cat"}}, interval=float(sys.argv[4]))
print(f'{{{{"import": {{imported - started}}, "generation": {{time.perf_counter() - imported}}}}}}')
""",
}

#: Floors for the cold start: the same requests (submit, status until completed, result) sent by
#: bare httpx; by bare httpx after importing the libraries tarash-core requires besides httpx
#: (attrs, pluggy; cattrs loads only at a first (de)serialisation); and, "records", after also
#: defining as many frozen attrs classes, with as many fields in all, as a Tarash generation's
#: process defines (``BENCH_RECORDS``: classes and fields, counted in a Tarash run), with an
#: intent row committed to a SQLite file in WAL mode before the submit and marked finished after
#: the result (invariant 3's least). No SDK on httpx starts below the first; tarash-core, built
#: on those libraries, cannot start below the second; and with its records and its ledger as
#: they are, nor below the third, whatever the rest of its code costs.
FLOOR = """
import sys, time
started = time.perf_counter()
import ssl
import httpx{imports}
base_url, ca, key, interval = sys.argv[1:]
imported = time.perf_counter()
tls = ssl.create_default_context(cafile=ca)
with httpx.Client(verify=tls, headers={{"Authorization": f"Key {{key}}"}}) as client:{intent}
    job = client.post(f"{{base_url}}/{model}", json={{"prompt": "a cat"}}).json()
    while client.get(job["status_url"]).json()["status"] != "COMPLETED":
        time.sleep(float(interval))
    client.get(job["response_url"]).json(){finished}
print(f'{{{{"import": {{imported - started}}, "generation": {{time.perf_counter() - imported}}}}}}')
"""
RECORDS = """
import attrs, json, os, pluggy, sqlite3
classes, fields = map(int, os.environ["BENCH_RECORDS"].split(","))
for index in range(classes):
    count = fields // classes + (index < fields % classes)
    annotations = {f"f{n}": "object" for n in range(count)}
    attrs.frozen(type(f"Record{index}", (), {"__annotations__": annotations}))"""
LEDGER = """
    ledger = sqlite3.connect(os.path.join(os.environ["TARASH_HOME"], "floor.db"), isolation_level=None)
    ledger.execute("PRAGMA journal_mode=WAL")
    ledger.execute("PRAGMA synchronous=NORMAL")
    ledger.execute("CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, state TEXT, data TEXT)")
    key = os.urandom(8).hex()
    ledger.execute("INSERT INTO jobs VALUES (?, 'intent', ?)", (key, json.dumps({"prompt": "a cat"})))"""
FINISHED = """
    ledger.execute("UPDATE jobs SET state = 'finished' WHERE key = ?", (key,))"""
COLD["httpx-cold"] = FLOOR.format(imports="", intent="", finished="", model=MODEL)
COLD["stack-cold"] = FLOOR.format(imports="\nimport attrs, pluggy", intent="", finished="", model=MODEL)
COLD["records-cold"] = FLOOR.format(imports=RECORDS, intent=LEDGER, finished=FINISHED, model=MODEL)

CLIENTS = {
    "paired": client_paired,
    "tarash-sequential": client_tarash_sequential,
    "raw-sequential": client_raw_sequential,
    "tarash-concurrent": client_tarash_concurrent,
    "raw-concurrent": client_raw_concurrent,
}


def run_client(
    server: Server, name: str, n: int, interval: float, warmup: int = 0, source: str | None = None
) -> dict[str, Any]:
    """Run one scenario in a fresh process (with ``source`` first on its ``PYTHONPATH``); add the
    server's request and connection deltas."""
    counts_before, connections_before = server.stats()
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    # Bytecode is cached as after any pip install (this workplace sets PYTHONDONTWRITEBYTECODE).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if name.startswith("raw") or name == "paired":
        env["FAL_QUEUE_RUN_HOST"] = server.base_url.removeprefix("https://")
        env["SSL_CERT_FILE"] = server.ca_path
    if name in COLD:
        command = [
            sys.executable,
            "-c",
            COLD[name],
            server.base_url,
            server.ca_path,
            server.api_key,
            str(interval),
        ]
    else:
        command = [
            sys.executable,
            __file__,
            "--client",
            name,
            "--base-url",
            server.base_url,
            "--ca",
            server.ca_path,
            "--key",
            server.api_key,
            "-n",
            str(n),
            "--interval",
            str(interval),
            "--warmup",
            str(warmup),
        ]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    counts_after, connections_after = server.stats()
    generations = (n + warmup) * (2 if name == "paired" else 1)
    result["requests"] = {k: (counts_after[k] - counts_before[k]) / generations for k in KINDS}
    result["connections"] = connections_after - connections_before
    result["process_seconds"] = elapsed
    return result


def _per_generation(requests: dict[str, float]) -> str:
    total = sum(requests.values())
    parts = ", ".join(f"{k} {v:g}" for k, v in requests.items() if v)
    return f"{total:g} ({parts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sequential", type=int, default=60, help="sequential generations per client (alternating)"
    )
    parser.add_argument("--concurrent", type=int, default=1000, help="concurrent generations")
    parser.add_argument("--cold", type=int, default=15, help="cold-start runs per client (alternating)")
    parser.add_argument(
        "--raw-concurrent",
        type=int,
        default=200,
        help="concurrent generations for raw fal-client (slow: a new connection per request; 0 skips it)",
    )
    parser.add_argument("--interval", type=float, default=0.01, help="poll interval, sequential")
    parser.add_argument(
        "--concurrent-interval",
        type=float,
        default=0.1,
        help="poll interval, concurrent (fal-client's default)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="paired runs per Tarash (alternating)")
    parser.add_argument("--baseline", help="another checkout's tarash-core/src to time as well")
    parser.add_argument("--skip-concurrent", action="store_true", help="only the sequential and cold figures")
    parser.add_argument("--client", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(CLIENTS[args.client](args)))
        return

    home = tempfile.TemporaryDirectory(prefix="tarash-fal-bench-")
    os.environ["TARASH_HOME"] = home.name  # the clients' default ledger: a new file, not the user's
    server = Server(queue_polls=2, processing_polls=2)
    try:
        print(
            f"fake fal server: {server.base_url} (separate process); each job: 2 queued, "
            "2 in-progress, then completed status answers"
        )
        print(f"\n== sequential sync generations (poll interval {args.interval}s)")
        for name in ("raw", "tarash"):
            result = run_client(server, f"{name}-sequential", 10, args.interval)
            print(
                f"{name:>7}: requests/generation {_per_generation(result['requests'])}; "
                f"TCP connections opened for 10 generations: {result['connections']}"
            )
        sources = {"tarash": None, **({"baseline": args.baseline} if args.baseline else {})}
        ratios: dict[str, list[float]] = {label: [] for label in sources}
        for _ in range(args.rounds):
            for label, source in sources.items():
                paired = run_client(server, "paired", args.sequential, args.interval, 3, source)
                for name in ("raw", "tarash"):
                    times = paired[name]
                    median, mean = statistics.median(times) * 1000, statistics.mean(times) * 1000
                    print(
                        f"{label if name == 'tarash' else 'raw':>8}: median {median:7.2f} ms, mean "
                        f"{mean:7.2f} ms per generation ({len(times)} generations, alternating raw/tarash)"
                    )
                ratios[label].append(statistics.median(paired["tarash"]) / statistics.median(paired["raw"]))
                print(f"  time ratio {label}/raw (medians): {ratios[label][-1]:.3f} (target <= 1.05)")
        for label, values in ratios.items():
            print(f"  {label}/raw over {len(values)} rounds: median {statistics.median(values):.3f}")

        print(f"\n== cold start: spawn, import, one generation, exit ({args.cold} runs each, alternating)")
        counted = run_client(server, "tarash-cold", 1, args.interval)  # also writes the ledger file
        os.environ["BENCH_RECORDS"] = f"{counted['records']},{counted['fields']}"
        print(
            f"  a Tarash generation's process defines {counted['records']} attrs records, "
            f"{counted['fields']} fields"
        )
        clients = {
            "httpx": ("httpx-cold", None),
            "stack": ("stack-cold", None),
            "records": ("records-cold", None),
            "raw": ("raw-cold", None),
        } | {label: ("tarash-cold", source) for label, source in sources.items()}
        cold: dict[str, list[float]] = {label: [] for label in clients}
        parts: dict[str, dict[str, list[float]]] = {
            label: {"import": [], "generation": []} for label in clients
        }
        requests = {  # the first run of each also writes the bytecode caches
            label: _per_generation(run_client(server, client, 1, args.interval, source=source)["requests"])
            for label, (client, source) in clients.items()
        }
        print("  requests: " + "; ".join(f"{label} {each}" for label, each in requests.items()))
        for _ in range(args.cold):
            for label, (client, source) in clients.items():
                result = run_client(server, client, 1, args.interval, source=source)
                cold[label].append(result["process_seconds"])
                for part, values in parts[label].items():
                    values.append(result[part])
        for label, runs in cold.items():
            imports, generations = parts[label]["import"], parts[label]["generation"]
            rest = [run - i - g for run, i, g in zip(runs, imports, generations, strict=True)]
            print(
                f"{label:>8}: median {statistics.median(runs) * 1000:7.1f} ms per process: import "
                f"{statistics.median(imports) * 1000:5.1f} ms, first generation "
                f"{statistics.median(generations) * 1000:5.1f} ms, the rest (interpreter start, exit) "
                f"{statistics.median(rest) * 1000:5.1f} ms"
            )
        print(
            "  floors: httpx = the same requests by bare httpx; stack = the same after importing "
            "attrs and pluggy, which tarash-core requires; records = the same after also defining "
            "as many attrs records and writing a SQLite intent row before the submit"
        )
        for label in ["stack", "records", *sources]:
            print(
                f"  cold-start ratio {label}/raw (medians): "
                f"{statistics.median(cold[label]) / statistics.median(cold['raw']):.3f}"
                + (" (target <= 1.0)" if label in sources else "")
            )

        if args.skip_concurrent:
            return
        print(f"\n== concurrent async generations (poll interval {args.concurrent_interval}s)")
        for name, count in (("tarash", args.concurrent), ("raw", args.raw_concurrent)):
            if not count:
                continue
            result = run_client(server, f"{name}-concurrent", count, args.concurrent_interval)
            print(
                f"{name:>7}: {count} generations in {result['wall']:6.2f} s; peak RSS "
                f"{result['rss_peak']:6.1f} MiB (at start {result['rss_before']:5.1f} MiB); TCP "
                f"connections opened {result['connections']}; requests/generation "
                f"{_per_generation(result['requests'])}"
            )
        print("  targets for tarash: peak RSS <= 80 MiB, connections <= 100")
    finally:
        server.stop()
        home.cleanup()


if __name__ == "__main__":
    main()
