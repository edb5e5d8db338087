"""Core orchestration under load: N concurrent async generations with faults on status polls.

A small asyncio HTTP/1.1 job server on 127.0.0.1 answers 10% of status polls with 429 (with
Retry-After) or 500, at random. A lifecycle plugin registered in-process describes its requests
as flows; core sends them through its own pools (at most 100 connections). Prints wall time,
polls, injected faults, submits counted by the server (must equal N: a fault never causes a
resubmission) and peak RSS.

The run is repeated with the job ledger off, on a SQLite file, and on PostgreSQL (a throwaway
cluster started like the tests' one, with PostgreSQL's default durability settings; needs the
server binaries and the postgres extra), then the wall times are compared, with the CPU time of
the process, the CPU time of the event loop's thread and the times that thread had to wait for
the interpreter lock or a lock held by another thread (its voluntary context switches; Linux), and
the time spent inside the ledger's store calls (made in the ledger's writer thread, or on the
loop while it collects a batch for its connection: a helper process's or PostgreSQL's time making
the batch is not in it; each job waits for its own writes). The loop's CPU and switches
are steadier than wall time on a shared machine, and they show where the ledger's cost lands: a
second thread that works beside a busy loop costs the loop a hand-over each time it takes the lock
back, whatever it does with it.
Before the runs it prints what handing work between two threads costs on this machine, across
its CPUs and on one (Linux): on a virtual machine whose idle CPUs sleep, waking a thread on another
CPU can cost ten times what it costs on the same one, and the ledger's writer thread hands the
interpreter lock to the event loop and back a few times per batch. ``--cpus 0`` runs everything
(the PostgreSQL server included) on the CPUs listed, to see the ledger's cost without that.
On a shared machine, repeat the runs (``--repeat``): the table compares the fastest of each,
and the medians. ``--baseline DIR`` (another checkout's ``tarash-core/src``) runs each ledger in a
fresh process, ours and the baseline's taking turns, so a before/after comparison sees the same
machine load.

    python benchmarks/core_load.py [--jobs 1000] [--fault-rate 0.1] [--ledgers off,sqlite,postgres]
        [--repeat 1] [--baseline DIR] [--cpus 0,1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from tarash.tarash_gateway import generate_video_async, set_ledger
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.models import (
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import (
    Capabilities,
    JobStatus,
    ProviderSpec,
    Request,
    SubmittedJob,
    hookimpl,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_intent import TimedStore, opened

#: wall, CPU, the loop thread's CPU and voluntary context switches, the median job's time, store
#: calls, seconds in them
Row = tuple[float, float, float, int, float, int, float]


class Server:
    def __init__(self, fault_rate: float, polls_to_finish: int) -> None:
        self.fault_rate = fault_rate
        self.polls_to_finish = polls_to_finish
        self.counts: collections.Counter[str] = collections.Counter()
        self.jobs: dict[str, int] = {}
        self.connections = 0
        self.rng = random.Random(7)
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                status, body, extra = self.answer(method, path)
                payload = json.dumps(body).encode()
                head = (
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n{extra}\r\n"
                )
                writer.write(head.encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.writers.discard(writer)
            writer.close()

    async def close_connections(self) -> None:
        """End the kept-alive connections, so no handler is left waiting when the loop stops."""
        for writer in list(self.writers):
            writer.close()
        await asyncio.sleep(0.1)

    def answer(self, method: str, path: str) -> tuple[int, Any, str]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["jobs"]:
            self.counts["submit"] += 1
            job_id = f"j{len(self.jobs)}"
            self.jobs[job_id] = 0
            return 201, {"id": job_id}, ""
        if method == "GET" and len(parts) == 2:
            self.counts["status"] += 1
            if self.rng.random() < self.fault_rate:
                if self.rng.random() < 0.5:
                    self.counts["fault_429"] += 1
                    return 429, {"error": "slow down"}, "Retry-After: 0.05\r\n"
                self.counts["fault_500"] += 1
                return 500, {"error": "oops"}, ""
            self.jobs[parts[1]] += 1
            done = self.jobs[parts[1]] >= self.polls_to_finish
            return 200, {"state": "completed" if done else "processing"}, ""
        if method == "GET" and len(parts) == 3:
            self.counts["result"] += 1
            return 200, {"url": f"https://cdn.test/{parts[1]}.mp4"}, ""
        return 404, {}, ""


class LoadPlugin:
    """A lifecycle plugin written as flows: core sends its requests through its own pools."""

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="loadtest", modalities={"video"}, capabilities=Capabilities(cancel=False))]

    @hookimpl
    def submit(self, config: Any, request: Any, context: Any) -> Any:
        answer = yield Request(method="POST", url="/jobs", json={})
        return SubmittedJob(job_id=answer.json()["id"])

    @hookimpl
    def status(self, config: Any, job: Any, context: Any) -> Any:
        answer = yield Request(method="GET", url=f"/jobs/{job.job_id}")
        return JobStatus(state=answer.json()["state"])

    @hookimpl
    def result(self, config: Any, job: Any, context: Any) -> Any:
        answer = yield Request(method="GET", url=f"/jobs/{job.job_id}/result")
        return VideoGenerationResponse(request_id=job.job_id, video=answer.json()["url"])


def _round_trips(count: int = 20000) -> tuple[float, float]:
    """Microseconds per round trip between two threads handing a turn to each other (semaphores),
    and the CPU time the first thread spends on each."""
    import threading

    mine, theirs = threading.Semaphore(0), threading.Semaphore(0)

    def other() -> None:
        for _ in range(count):
            mine.acquire()
            theirs.release()

    thread = threading.Thread(target=other)
    thread.start()
    started, (cpu, _) = time.perf_counter(), _loop_thread()
    for _ in range(count):
        mine.release()
        theirs.acquire()
    elapsed, (cpu_after, _) = time.perf_counter() - started, _loop_thread()
    thread.join()
    return elapsed / count * 1e6, (cpu_after - cpu) / count * 1e6


def machine_check() -> str:
    """What a round trip between two threads costs across this machine's CPUs and on one."""
    cpus = sorted(os.sched_getaffinity(0))
    across = _round_trips()
    line = f"thread round trip: {across[0]:.1f} us ({across[1]:.1f} us of the caller's CPU) on CPUs {cpus}"
    if len(cpus) > 1:
        os.sched_setaffinity(0, cpus[:1])
        try:
            one = _round_trips()
        finally:
            os.sched_setaffinity(0, cpus)
        line += f"; {one[0]:.1f} us ({one[1]:.1f} us) on CPU {cpus[0]} alone"
    return line


def _loop_thread() -> tuple[float, int]:
    """This thread's CPU time and voluntary context switches so far."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw


async def main(jobs: int, fault_rate: float) -> tuple[float, float, float, int, float]:
    server = Server(fault_rate, polls_to_finish=3)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=2048)
    port = listener.sockets[0].getsockname()[1]
    plugin = LoadPlugin()
    HOST.register_plugin_object(plugin, "loadtest")
    config = VideoGenerationConfig(
        provider="loadtest", model="m", base_url=f"http://127.0.0.1:{port}", poll_interval=0.05, timeout=120
    )
    started, cpu, (loop_cpu, switches) = time.perf_counter(), time.process_time(), _loop_thread()

    async def job(i: int) -> float:
        await generate_video_async(config, VideoGenerationRequest(prompt=f"p{i}"))
        return time.perf_counter() - started

    try:
        results = await asyncio.gather(*(job(i) for i in range(jobs)), return_exceptions=True)
    finally:
        HOST.unregister_plugin_object(plugin)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    loop_cpu_after, switches_after = _loop_thread()
    loop_cpu, switches = loop_cpu_after - loop_cpu, switches_after - switches
    listener.close()
    await server.close_connections()
    await listener.wait_closed()
    failures = [r for r in results if isinstance(r, BaseException)]
    times = [r for r in results if isinstance(r, float)]
    median_job = statistics.median(times) if times else 0.0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"concurrent generations: {jobs}, fault rate on polls: {fault_rate:.0%}")
    print(
        f"completed: {jobs - len(failures)}, failed: {len(failures)}"
        + (f" (first: {failures[0]!r})" if failures else "")
    )
    print(f"server counts: {dict(server.counts)}")
    print(f"submits counted by the server == jobs: {server.counts['submit'] == jobs}")
    print(f"TCP connections opened: {server.connections}")
    print(
        f"wall time: {wall:.2f} s, CPU time: {cpu:.2f} s (the loop's thread {loop_cpu:.2f} s, "
        f"{switches} voluntary switches), peak RSS (client + server process): {peak_mib:.1f} MiB"
    )
    print(f"median job's time to its result: {median_job:.2f} s")
    return wall, cpu, loop_cpu, switches, median_job


@contextmanager
def ledger(kind: str) -> Iterator[TimedStore | None]:
    """Make ``kind`` (off, sqlite, postgres) this process's ledger, timed; None when off."""
    with opened(kind) if kind != "off" else nullcontext() as store:
        print(f"\n== ledger {kind}: {store!r}")
        timed = TimedStore(store) if store is not None else None
        set_ledger(timed if timed is not None else "off")
        try:
            yield timed
        finally:
            set_ledger("off")


def run_here(kinds: list[str], repeat: int, jobs: int, fault_rate: float) -> dict[str, list[Row]]:
    """Run each ledger ``repeat`` times in this process, interleaved."""
    runs: dict[str, list[Row]] = collections.defaultdict(list)
    for _ in range(repeat):
        for kind in kinds:
            with ledger(kind) as timed:
                wall, cpu, loop_cpu, switches, median_job = asyncio.run(main(jobs, fault_rate))
                calls, seconds = (timed.calls, timed.seconds) if timed is not None else (0, 0.0)
            runs[kind].append((wall, cpu, loop_cpu, switches, median_job, calls, seconds))
    return runs


def run_child(kind: str, source: str | None, arguments: argparse.Namespace) -> Row:
    """One run of ``kind`` in a fresh process, with ``source`` (a ``tarash-core/src``) first on its
    path when given."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    command = [sys.executable, __file__, "--ledgers", kind, "--jobs", str(arguments.jobs)]
    command += ["--fault-rate", str(arguments.fault_rate), "--row"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} run with {source or 'this checkout'} failed:\n{out.stderr}")
    last = out.stdout.strip().splitlines()[-1]
    wall, cpu, loop_cpu, switches, median_job, calls, seconds = json.loads(last)
    return wall, cpu, loop_cpu, switches, median_job, calls, seconds


def table(title: str, runs: dict[str, list[Row]], repeat: int) -> None:
    fastest = {kind: min(rows) for kind, rows in runs.items()}
    medians = {kind: statistics.median(row[0] for row in rows) for kind, rows in runs.items()}
    loops = {kind: statistics.median(row[2] for row in rows) for kind, rows in runs.items()}
    jobs = {kind: statistics.median(row[4] for row in rows) for kind, rows in runs.items()}
    print(
        f"\n{title}: fastest of {repeat} run(s) each; median wall in brackets; the loop's CPU and the "
        "median job's time against off: medians over the runs (steadier than the wall, which the "
        "slowest jobs' backoffs decide)\n"
        f"{'ledger':<10} {'wall (s)':>9} {'(median)':>9} {'vs off':>8} {'(median)':>9} {'CPU (s)':>8} "
        f"{'loop CPU':>9} {'vs off':>7} {'job (s)':>8} {'vs off':>7} {'switches':>9} {'store calls':>12} "
        f"{'in store (s)':>13}"
    )
    for kind, (wall, cpu, _, switches, _, calls, seconds) in fastest.items():
        versus = f"{(wall / fastest['off'][0] - 1):+.0%}" if "off" in fastest else "-"
        versus_median = f"({(medians[kind] / medians['off'] - 1):+.0%})" if "off" in medians else ""
        loop_versus = f"{(loops[kind] / loops['off'] - 1):+.0%}" if "off" in loops else "-"
        job_versus = f"{(jobs[kind] / jobs['off'] - 1):+.0%}" if "off" in jobs else "-"
        median_text = f"({medians[kind]:.2f})"
        print(
            f"{kind:<10} {wall:>9.2f} {median_text:>9} {versus:>8} {versus_median:>9} {cpu:>8.2f} "
            f"{loops[kind]:>9.2f} {loop_versus:>7} {jobs[kind]:>8.2f} {job_versus:>7} {switches:>9} "
            f"{calls:>12} {seconds:>13.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument(
        "--ledgers", default="off,sqlite,postgres", help="comma-separated: off, sqlite, postgres"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each ledger, interleaved; the table shows the fastest"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout's tarash-core/src: each run is a fresh process, ours and the "
        "baseline's taking turns, and a table is printed for each",
    )
    parser.add_argument(
        "--cpus", help="comma-separated CPUs to run on (this process and the ones it starts; Linux)"
    )
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    kinds = arguments.ledgers.split(",")
    if arguments.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in arguments.cpus.split(",")})
    if not arguments.row:
        print(machine_check())
    if arguments.row:
        (row,) = run_here(kinds, 1, arguments.jobs, arguments.fault_rate)[kinds[0]]
        print(json.dumps(row))
    elif arguments.baseline:
        sources = {"this checkout": None, "baseline": arguments.baseline}
        both: dict[str, dict[str, list[Row]]] = {label: collections.defaultdict(list) for label in sources}
        for _ in range(arguments.repeat):
            for kind in kinds:
                for label, source in sources.items():
                    both[label][kind].append(run_child(kind, source, arguments))
        for label, runs in both.items():
            table(label, runs, arguments.repeat)
    else:
        table(
            "this process",
            run_here(kinds, arguments.repeat, arguments.jobs, arguments.fault_rate),
            arguments.repeat,
        )
