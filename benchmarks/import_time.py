"""Import time of tarash.tarash_gateway and of provider discovery, against `python -c pass`.

Run in an environment with the plugins installed (e.g. the `tests_cross` nox venv, or any venv
with tarash-core, tarash-fal and tarash-example-provider):

    python benchmarks/import_time.py [--runs 30]

Prints the median wall time of fresh interpreters for: the floor (`pass`), `import
tarash.tarash_gateway` (lazy: no models), the package plus its models (what every script imports
to build a config), and that plus provider discovery (`list_providers()`); discovery is also timed
inside each interpreter (less noisy than a difference of two medians). Then which provider SDK
modules discovery imported (must be none). Targets: import <= 60 ms over the floor, discovery
<= 20 ms more.

Every figure is taken with bytecode caches present, as after any `pip install`: one untimed run of
each snippet first writes them even where PYTHONDONTWRITEBYTECODE is set (an editable install
otherwise recompiles its sources on every run, which no installed user pays).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SNIPPETS = {
    "floor (python -c pass)": "pass",
    "import tarash.tarash_gateway": "import tarash.tarash_gateway",
    "import + models": "import tarash.tarash_gateway, tarash.tarash_gateway.models",
    "import + models + discovery": (
        "import tarash.tarash_gateway as t, tarash.tarash_gateway.models; t.list_providers()"
    ),
}

IN_PROCESS = (
    "import time, tarash.tarash_gateway as t, tarash.tarash_gateway.models; "
    "s = time.perf_counter(); t.list_providers(); print((time.perf_counter() - s) * 1000)"
)

HEAVY = (
    "fal_client",
    "httpx",
    "cattrs",
    "tarash_fal._provider",
    "tarash_example_provider._client",
    "tarash.tarash_gateway._records",
)

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=ENV)
    if out.returncode != 0:
        raise SystemExit(f"python -c {code!r} failed:\n{out.stderr}")
    return out.stdout


def median_ms(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run(code)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    probe = (
        "import sys, json, tarash.tarash_gateway as t, tarash_fal, tarash_example_provider; "
        "ps = t.list_providers(); "
        f"print(json.dumps({{'providers': [p.name for p in ps], "
        f"'heavy': [m for m in {HEAVY!r} if m in sys.modules], "
        "'from': [tarash_fal.__file__, tarash_example_provider.__file__]}))"
    )
    found = json.loads(run(probe))  # first: it fails at once when a plugin is not installed
    for code in (*SNIPPETS.values(), IN_PROCESS):
        run(code)
    results = {name: median_ms(code, args.runs) for name, code in SNIPPETS.items()}
    in_process = statistics.median(float(run(IN_PROCESS)) for _ in range(args.runs))
    floor = results["floor (python -c pass)"]
    print(f"python {sys.version.split()[0]}; plugins loaded from {found['from']}")
    print(f"runs per figure: {args.runs} (median wall time of a fresh interpreter, bytecode cached)")
    for name, value in results.items():
        print(f"  {name:<32} {value:7.1f} ms   (+{value - floor:5.1f} ms over the floor)")
    import_cost = results["import + models"] - floor
    discovery_cost = results["import + models + discovery"] - results["import + models"]
    print(
        f"import (package + models, what every script needs) over floor: {import_cost:.1f} ms (target <= 60)"
    )
    print(
        f"discovery over import: {discovery_cost:.1f} ms wall, {in_process:.1f} ms timed in-process, "
        f"with providers {found['providers']} (target <= 20)"
    )
    print(f"modules discovery must not import, imported: {found['heavy'] or 'none'}")


if __name__ == "__main__":
    main()
