"""Import time of tarash.tarash_gateway and of provider discovery, against `python -c pass`.

Run in an environment with the plugins installed (e.g. the `tests_cross` nox venv, or any venv
with tarash-core, tarash-fal and tarash-example-provider):

    python benchmarks/import_time.py [--runs 30]

Prints the median wall time of fresh interpreters for: the floor (`pass`), `import
tarash.tarash_gateway` (lazy: no models), the package plus its models (what every script imports
to build a config), and that plus provider discovery (`list_providers()`), and which provider SDK
modules discovery imported (must be none). Targets: import <= 60 ms over the floor, discovery
<= 20 ms more.
"""

from __future__ import annotations

import argparse
import json
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

HEAVY = ("fal_client", "httpx", "cattrs", "tarash_fal._provider", "tarash_example_provider._client")


def median_ms(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    results = {name: median_ms(code, args.runs) for name, code in SNIPPETS.items()}
    floor = results["floor (python -c pass)"]
    probe = (
        "import sys, json, tarash.tarash_gateway as t; ps = t.list_providers(); "
        f"print(json.dumps({{'providers': [p.name for p in ps], "
        f"'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    found = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    print(f"runs per figure: {args.runs} (median wall time of a fresh interpreter)")
    for name, value in results.items():
        print(f"  {name:<32} {value:7.1f} ms   (+{value - floor:5.1f} ms over the floor)")
    import_cost = results["import + models"] - floor
    discovery_cost = results["import + models + discovery"] - results["import + models"]
    print(
        f"import (package + models, what every script needs) over floor: {import_cost:.1f} ms (target <= 60)"
    )
    print(
        f"discovery over import: {discovery_cost:.1f} ms with providers {found['providers']} (target <= 20)"
    )
    print(f"heavy modules imported by discovery: {found['heavy'] or 'none'}")


if __name__ == "__main__":
    main()
