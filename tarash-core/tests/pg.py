"""A throwaway PostgreSQL cluster: ``initdb`` in a temp dir, a free loopback port, removed at the end.

Used by the tests (``conftest.pg_cluster``) and by ``benchmarks/core_load.py``. The server binaries
are looked up on PATH, then under Debian's ``/usr/lib/postgresql/<version>/bin``. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` user (or ``nobody``) through
``runuser``. Its unix socket lives in the temp dir; clients connect over TCP on 127.0.0.1 with
trust authentication as the user ``tarash``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Settings for tests: durability off (the cluster is thrown away), room for many processes.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    base = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in base.glob("*/bin") if (p / "initdb").is_file() and (p / "pg_ctl").is_file()),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
    )
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_as() -> str | None:
    """The user to run the server as: None for the current one, else an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class Cluster:
    """A running throwaway cluster; :meth:`create_database` gives each user a fresh database."""

    def __init__(self, root: Path, port: int, user: str | None, binaries: Path) -> None:
        self.root = root
        self.port = port
        self.user = user
        self.binaries = binaries
        self._databases = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://tarash@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)

    def start(self, settings: dict[str, str]) -> None:
        data = self.root / "data"
        subprocess.run(
            self._command(
                str(self.binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "tarash",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "300",
            **settings,
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = '{value}'\n" for key, value in options.items())
        subprocess.run(
            self._command(
                str(self.binaries / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w", "start"
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )

    def stop(self) -> None:
        subprocess.run(
            self._command(
                str(self.binaries / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"
            ),
            capture_output=True,
            cwd=self.root,
        )


@contextmanager
def throwaway_cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Start a cluster (``settings`` go to postgresql.conf); stop and delete it at the end.

    Raises RuntimeError when PostgreSQL is not installed.
    """
    binaries = bin_dir()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
    user = _run_as()
    # Run as another user, the server must reach its directory through every parent: TMPDIR may
    # be inside a private checkout (nox points it at the session's folder), /tmp never is.
    root = Path(tempfile.mkdtemp(prefix="tarash-pg-", dir="/tmp" if user is not None else None))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster = Cluster(root, _free_port(), user, binaries)
        try:
            cluster.start(settings or {})
        except subprocess.CalledProcessError as exc:
            log = root / "log"
            detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
            raise RuntimeError(f"PostgreSQL did not start: {detail}") from exc
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
