"""Start-up time of the ``tarash`` command: ``tarash --help`` against ``python -c pass``.

Prints the median wall time of N runs of each (subprocesses, so interpreter start-up is included)
and the difference, which is what Tarash itself costs. Target: ``tarash --help`` under 150 ms.

    python benchmarks/cli_startup.py [--runs 21]

The ``tarash`` script next to the running interpreter is used (the one ``pip install tarash-core``
creates); ``python -m tarash.tarash_gateway.cli --help`` is measured as well.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def median_ms(command: list[str], runs: int) -> float:
    """Median wall time of ``command`` in milliseconds (one untimed warm-up run first)."""
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command")
    args = parser.parse_args()
    script = shutil.which("tarash", path=str(Path(sys.executable).parent))
    if script is None:
        print("the tarash script is not installed next to this python", file=sys.stderr)
        return 1
    baseline = median_ms([sys.executable, "-c", "pass"], args.runs)
    helped = median_ms([script, "--help"], args.runs)
    module = median_ms([sys.executable, "-m", "tarash.tarash_gateway.cli", "--help"], args.runs)
    print(f"runs per command:                 {args.runs}")
    print(f"python -c pass:                   {baseline:7.1f} ms (median)")
    print(f"tarash --help:                    {helped:7.1f} ms (median)")
    print(f"python -m ...cli --help:          {module:7.1f} ms (median)")
    print(f"tarash's own cost:                {helped - baseline:7.1f} ms")
    verdict = "OK" if helped < TARGET_MS else "OVER TARGET"
    print(f"target: tarash --help < {TARGET_MS:.0f} ms:   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
