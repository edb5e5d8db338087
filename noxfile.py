"""Task runner for the Tarash monorepo: `nox` runs every default session.

Each test session installs the distributions it needs from this checkout into a fresh virtualenv,
so entry-point discovery is exercised exactly as users get it.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = [
    "tests_core",
    "tests_fal",
    "tests_example",
    "tests_replicate",
    "tests_google",
    "tests_openai",
    "tests_cross",
    "lint",
    "typecheck",
    "docs",
    "build",
]

PYPROJECT = nox.project.load_toml("pyproject.toml")
CORE = "./tarash-core"
FAL = "./tarash-fal"
EXAMPLE = "./tarash-example-provider"
REPLICATE = "./tarash-replicate"
GOOGLE = "./tarash-google"
OPENAI = "./tarash-openai"
PLUGINS = (FAL, EXAMPLE, REPLICATE, f"{GOOGLE}[vertex]", OPENAI)


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


def _pytest(session: nox.Session, *paths: str) -> None:
    """Run pytest strictly: broken plugins raise, state files go to a session temp dir."""
    env = {"TARASH_STRICT_PLUGINS": "1", "TARASH_HOME": session.create_tmp()}
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths, *session.posargs, env=env)


@nox.session
def tests_core(session: nox.Session) -> None:
    """tarash-core's own tests (no provider plugin installed; the job ledger also on PostgreSQL)."""
    session.install(f"{CORE}[testing,postgres]", *_group("test"))
    _pytest(session, "tarash-core/tests")


@nox.session
def tests_fal(session: nox.Session) -> None:
    """tarash-fal against its fake fal queue server, through the real fal-client."""
    session.install(f"{CORE}[testing,postgres]", FAL, *_group("test"))
    _pytest(session, "tarash-fal/tests")


@nox.session
def tests_example(session: nox.Session) -> None:
    """tarash-example-provider's tests and the conformance kit, against its reference server."""
    session.install(f"{CORE}[testing,postgres]", EXAMPLE, *_group("test"))
    _pytest(session, "tarash-example-provider/tests")


@nox.session
def tests_replicate(session: nox.Session) -> None:
    """tarash-replicate against its fake Replicate API, and the conformance kit."""
    session.install(f"{CORE}[testing,webhooks]", REPLICATE, *_group("test"))
    _pytest(session, "tarash-replicate/tests")


@nox.session
def tests_google(session: nox.Session) -> None:
    """tarash-google against its fake Gemini API, Vertex AI and OAuth token endpoint."""
    session.install(f"{CORE}[testing]", f"{GOOGLE}[testing,vertex]", *_group("test"))
    _pytest(session, "tarash-google/tests")


@nox.session
def tests_openai(session: nox.Session) -> None:
    """tarash-openai (OpenAI and Azure OpenAI images) against its fake images API."""
    session.install(f"{CORE}[testing]", OPENAI, *_group("test"))
    _pytest(session, "tarash-openai/tests")


@nox.session
def tests_cross(session: nox.Session) -> None:
    """Cross-distribution tests: built wheels installed into fresh venvs, discovery, isolation."""
    session.install(f"{CORE}[testing]", *PLUGINS, *_group("test"), *_group("build"))
    _pytest(session, "tests")


@nox.session(python=["3.10", "3.12", "3.13"])
def tests_other_pythons(session: nox.Session) -> None:
    """Opt-in, not a default session: every distribution's tests on the other supported Pythons.

    Needs those interpreters on PATH; with pyenv:
    ``PYENV_VERSION=3.11.7:3.10.13:3.12.1:3.13.0 nox -s tests_other_pythons``.
    """
    session.install(f"{CORE}[testing,postgres]", *PLUGINS, *_group("test"))
    for tests in (
        "tarash-core/tests",
        "tarash-fal/tests",
        "tarash-example-provider/tests",
        "tarash-replicate/tests",
        "tarash-google/tests",
        "tarash-openai/tests",
    ):
        _pytest(session, tests)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on tarash-core, checked on the plugins."""
    session.install(f"{CORE}[testing,postgres,webhooks]", *PLUGINS, *_group("typecheck"))
    session.run("mypy", "-p", "tarash.tarash_gateway", env={"MYPYPATH": "tarash-core/src"})
    packages = ("tarash_fal", "tarash_example_provider", "tarash_replicate", "tarash_google", "tarash_openai")
    session.run(
        "mypy",
        "--check-untyped-defs",
        *(arg for package in packages for arg in ("-p", package)),
        env={"MYPYPATH": ":".join(f"{p.split('[')[0].removeprefix('./')}/src" for p in PLUGINS)},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs site strictly and execute the code blocks of the guides."""
    session.install(f"{CORE}[testing]", *PLUGINS, f"{FAL}[webhooks]", *_group("docs"), *_group("test"))
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")
    _pytest(session, "docs/test_docs.py", "docs/test_site.py")


@nox.session
def build(session: nox.Session) -> None:
    """Build wheel + sdist of each distribution, check metadata, install each wheel alone."""
    session.install(*_group("build"))
    session.run("python", "scripts/check_dists.py", "--out", "dist")
