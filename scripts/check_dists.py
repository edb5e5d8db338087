"""Build and check the three Tarash distributions as users will receive them.

For each distribution (tarash-core first, since the others install on top of it):

1. build its sdist, and its wheel from that sdist (``python -m build``);
2. ``twine check --strict`` both files;
3. inspect the wheel: ``py.typed`` shipped, metadata version equal to ``pyproject.toml``'s, no
   ``tarash/__init__.py`` (``tarash`` is a namespace shared by several distributions), and for the
   plugins a ``tarash-core`` requirement whose range is bounded above and includes the core just
   built;
4. install the wheel alone into a fresh virtual environment (plus the fresh tarash-core wheel for
   the plugins), letting pip resolve the declared dependencies from the package index, then import
   it, compare the installed version, and run ``tarash --help`` (core) or check that the plugin
   loads through its entry point (plugins).

The list of distributions is fixed: a missing one is a packaging error. Prints a summary table and
exits with status 1 if anything failed.

Usage: ``python scripts/check_dists.py --out dist`` (what ``nox -s build`` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CORE = "tarash-core"


@dataclass(frozen=True)
class Distribution:
    """One distribution this repository publishes, and how to recognise it once installed."""

    name: str
    folder: str
    import_name: str
    package_dir: str  # the package's folder inside the wheel, where py.typed must be
    console_script: str | None = None
    entry_point: str | None = None  # its name in the ``tarash`` entry-point group

    @property
    def is_plugin(self) -> bool:
        return self.name != CORE


DISTRIBUTIONS = (
    Distribution(
        CORE,
        "tarash-core",
        "tarash.tarash_gateway",
        "tarash/tarash_gateway",
        console_script="tarash",
    ),
    Distribution("tarash-fal", "tarash-fal", "tarash_fal", "tarash_fal", entry_point="fal"),
    Distribution(
        "tarash-example-provider",
        "tarash-example-provider",
        "tarash_example_provider",
        "tarash_example_provider",
        entry_point="example",
    ),
    Distribution(
        "tarash-replicate",
        "tarash-replicate",
        "tarash_replicate",
        "tarash_replicate",
        entry_point="replicate",
    ),
    Distribution("tarash-google", "tarash-google", "tarash_google", "tarash_google", entry_point="google"),
    Distribution("tarash-openai", "tarash-openai", "tarash_openai", "tarash_openai", entry_point="openai"),
)

CHECKS = ("build", "twine", "wheel", "core range", "install", "import", "version", "runs")


@dataclass
class Report:
    """The outcome of every check for one distribution."""

    dist: Distribution
    version: str = "?"
    results: dict[str, bool | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    wheel: Path | None = None
    sdist: Path | None = None

    def record(self, check: str, ok: bool, problem: str = "") -> bool:
        self.results[check] = ok and self.results.get(check) is not False
        if not ok:
            self.problems.append(f"{check}: {problem}")
        return ok

    @property
    def ok(self) -> bool:
        return not self.problems


class CommandFailed(Exception):
    def __init__(self, command: list[str], output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-25:])
        super().__init__(f"`{' '.join(command)}` failed:\n{textwrap.indent(tail, '    ')}")


def run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; return its combined output, or raise CommandFailed."""
    merged = {
        **os.environ,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        **(env or {}),
    }
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=merged,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise CommandFailed(command, completed.stdout)
    return completed.stdout


# --------------------------------------------------------------------------------------------
# Build and static checks
# --------------------------------------------------------------------------------------------


def project_metadata(dist: Distribution) -> dict[str, object]:
    with (ROOT / dist.folder / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def build(dist: Distribution, out: Path, report: Report) -> bool:
    stem = canonicalize_name(dist.name).replace("-", "_")
    for stale in out.glob(f"{stem}-*"):
        stale.unlink()
    try:
        run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT / dist.folder)])
    except CommandFailed as exc:
        return report.record("build", False, str(exc))
    wheels = sorted(out.glob(f"{stem}-*.whl"))
    sdists = sorted(out.glob(f"{stem}-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return report.record(
            "build",
            False,
            f"expected one wheel and one sdist, got {[p.name for p in wheels + sdists]}",
        )
    report.wheel, report.sdist = wheels[0], sdists[0]
    return report.record("build", True)


def twine_check(report: Report) -> None:
    assert report.wheel is not None
    assert report.sdist is not None
    try:
        run(
            [
                sys.executable,
                "-m",
                "twine",
                "check",
                "--strict",
                str(report.wheel),
                str(report.sdist),
            ]
        )
        report.record("twine", True)
    except CommandFailed as exc:
        report.record("twine", False, str(exc))


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The wheel's file names and its METADATA headers (name -> values)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta_name).decode("utf-8")
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if ": " in line and not line.startswith(" "):
            key, value = line.split(": ", 1)
            headers.setdefault(key, []).append(value)
    return names, headers


def inspect_wheel(report: Report, core_version: str | None) -> None:
    assert report.wheel is not None
    dist = report.dist
    names, headers = wheel_metadata(report.wheel)
    ok = report.record(
        "wheel",
        f"{dist.package_dir}/py.typed" in names,
        f"{dist.package_dir}/py.typed is missing from {report.wheel.name}",
    )
    if "tarash/__init__.py" in names:
        ok = report.record(
            "wheel",
            False,
            "the wheel ships tarash/__init__.py, which would break "
            "the tarash namespace shared with other distributions",
        )
    built_version = headers.get("Version", ["?"])[0]
    if built_version != report.version:
        ok = report.record(
            "wheel",
            False,
            f"METADATA says version {built_version}, pyproject.toml says {report.version}",
        )
    if ok:
        report.record("wheel", True)
    if dist.is_plugin:
        check_core_range(report, headers.get("Requires-Dist", []), core_version)


def check_core_range(report: Report, requires: list[str], core_version: str | None) -> None:
    found = [Requirement(r) for r in requires if canonicalize_name(Requirement(r).name) == CORE]
    unconditional = [r for r in found if r.marker is None]
    if not unconditional:
        report.record(
            "core range",
            False,
            f"no unconditional requirement on {CORE} (Requires-Dist: {requires})",
        )
        return
    spec = unconditional[0].specifier
    bounded = any(s.operator in ("<", "<=", "==", "~=", "===") for s in spec)
    if not bounded:
        report.record(
            "core range",
            False,
            f"{CORE}{spec} has no upper bound; declare the compatible range, e.g. >=0.1,<0.2",
        )
        return
    if core_version is None:
        report.record("core range", False, f"{CORE} was not built, cannot check {CORE}{spec}")
        return
    report.record(
        "core range",
        spec.contains(Version(core_version), prereleases=True),
        f"{CORE}{spec} does not include the built {CORE} {core_version}",
    )


# --------------------------------------------------------------------------------------------
# Install each wheel alone
# --------------------------------------------------------------------------------------------

PROBE = """
import importlib, importlib.metadata as md, json, sys
dist, module, entry_point = sys.argv[1], sys.argv[2], sys.argv[3]
info = {"version": md.version(dist)}
mod = importlib.import_module(module)
info["module_file"] = getattr(mod, "__file__", None)
if module == "tarash.tarash_gateway":
    info["__version__"] = mod.__version__
if entry_point:
    from tarash.tarash_gateway import list_plugins, list_providers
    info["plugins"] = {p.name: [p.status, p.error] for p in list_plugins()}
    info["providers"] = [p.name for p in list_providers()]
print("PROBE" + json.dumps(info))
"""


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_and_probe(report: Report, core_wheel: Path | None, workdir: Path) -> None:
    assert report.wheel is not None
    dist = report.dist
    venv = workdir / f"venv-{dist.name}"
    wheels = [str(report.wheel)]
    if dist.is_plugin:
        if core_wheel is None:
            report.record("install", False, f"{CORE} wheel unavailable")
            return
        wheels.append(str(core_wheel))
    try:
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv_python(venv))
        run([python, "-m", "pip", "install", "--quiet", *wheels])
    except CommandFailed as exc:
        report.record("install", False, str(exc))
        return
    report.record("install", True)

    probe_env = {"PYTHONPATH": ""}
    try:
        output = run(
            [python, "-c", PROBE, dist.name, dist.import_name, dist.entry_point or ""],
            cwd=workdir,
            env=probe_env,
        )
        info = json.loads(output.split("PROBE", 1)[1])
    except (CommandFailed, IndexError, ValueError) as exc:
        report.record("import", False, str(exc))
        return
    module_file = os.path.realpath(str(info.get("module_file") or ""))
    report.record(
        "import",
        module_file.startswith(os.path.realpath(venv) + os.sep),
        f"{dist.import_name} was imported from {module_file}, not from the fresh venv",
    )

    versions = {info["version"], info.get("__version__", info["version"])}
    report.record(
        "version",
        versions == {report.version},
        f"installed version {sorted(versions)} != pyproject.toml {report.version}",
    )

    if dist.console_script:
        script = venv / ("Scripts" if os.name == "nt" else "bin") / dist.console_script
        try:
            help_text = run([str(script), "--help"], cwd=workdir, env=probe_env)
            report.record(
                "runs",
                "usage" in help_text.lower(),
                f"`{dist.console_script} --help` printed no usage",
            )
        except CommandFailed as exc:
            report.record("runs", False, str(exc))
    if dist.entry_point:
        status = info.get("plugins", {}).get(dist.entry_point)
        report.record(
            "runs",
            bool(status) and status[0] == "loaded",
            f"entry point {dist.entry_point!r} in group 'tarash': {status or 'not found'}",
        )


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def check(dist: Distribution, out: Path, workdir: Path, core: Report | None) -> Report:
    report = Report(dist)
    pyproject = ROOT / dist.folder / "pyproject.toml"
    if not pyproject.is_file():
        report.record(
            "build",
            False,
            f"{pyproject.relative_to(ROOT)} does not exist: every "
            f"distribution of the repository must be buildable",
        )
        return report
    project = project_metadata(dist)
    report.version = str(project.get("version", "?"))
    if canonicalize_name(str(project.get("name"))) != canonicalize_name(dist.name):
        report.record("build", False, f"pyproject.toml names the project {project.get('name')!r}")
        return report
    if not build(dist, out, report):
        return report
    twine_check(report)
    core_wheel = core.wheel if core is not None else None
    inspect_wheel(report, core.version if core is not None and core_wheel is not None else None)
    install_and_probe(report, core_wheel, workdir)
    return report


def print_summary(reports: list[Report], elapsed: float) -> None:
    width = max(len("distribution"), *(len(r.dist.name) for r in reports))
    header = f"{'distribution':<{width}}  {'version':<8}  " + "  ".join(CHECKS)
    print("\n" + header)
    print("-" * len(header))
    for report in reports:
        cells = []
        for check_name in CHECKS:
            value = report.results.get(check_name)
            mark = "-" if value is None else ("ok" if value else "FAIL")
            cells.append(f"{mark:<{len(check_name)}}")
        print(f"{report.dist.name:<{width}}  {report.version:<8}  " + "  ".join(cells))
    failed = [r for r in reports if not r.ok]
    for report in failed:
        print(f"\n{report.dist.name}:")
        for problem in report.problems:
            print(textwrap.indent(problem, "  "))
    verdict = "FAILED" if failed else "all distributions OK"
    print(f"\n{verdict} ({elapsed:.0f}s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "dist",
        help="where to write the wheels and sdists (default: dist/)",
    )
    parser.add_argument(
        "--keep-venvs",
        action="store_true",
        help="keep the temporary virtual environments (their path is printed)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tarash-dists-"))
    reports: list[Report] = []
    try:
        core: Report | None = None
        for dist in DISTRIBUTIONS:
            print(f"== {dist.name}", flush=True)
            report = check(dist, out, workdir, core)
            if dist.name == CORE:
                core = report
            reports.append(report)
            print("   " + ("ok" if report.ok else f"{len(report.problems)} problem(s)"), flush=True)
    finally:
        if args.keep_venvs:
            print(f"virtual environments kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(reports, time.monotonic() - started)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
