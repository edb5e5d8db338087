"""The tests that send SIGINT pass in a test process launched with SIGINT ignored (background, CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SIGINT_TESTS = (
    "test_cli.py::test_ctrl_c_exits_130_and_leaves_no_file",
    "test_download.py::test_interrupt_mid_stream_leaves_no_file",
    "test_orchestration.py::test_keyboard_interrupt_while_waiting_cancels_the_remote_job",
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
