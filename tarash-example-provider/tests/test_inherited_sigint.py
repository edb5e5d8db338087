"""The tests that send SIGINT pass in a test process launched with SIGINT ignored (background, CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SIGINT_TESTS = (
    "test_provider.py::test_the_tarash_command_gains_an_example_server_subcommand",
    "test_server.py::test_the_command_line_serves_on_loopback_until_interrupted",
)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_sigint_tests_pass_when_the_test_process_ignores_sigint() -> None:
    launcher = (
        "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{list(SIGINT_TESTS)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher], cwd=TESTS, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(SIGINT_TESTS)} passed" in done.stdout
