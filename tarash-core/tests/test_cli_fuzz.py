"""Fuzzed `tarash generate` arguments: a documented exit code and a one-line error, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarash.tarash_gateway.cli import main

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8}
TEXT = st.text(min_size=0, max_size=40)
VALUES = st.one_of(
    TEXT,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["16:9", "9:16", "720p", "4k", "auto", "5", "0", "-1", "nan", "1e999", "x=y", "{}"]),
)
OPTIONS = {
    "video": [
        "--aspect-ratio",
        "--duration",
        "--resolution",
        "--negative-prompt",
        "--seed",
        "--param",
        "--timeout",
        "--poll-interval",
        "--provider-config",
        "--model",
        "--image",
    ],
    "image": [
        "--aspect-ratio",
        "--size",
        "--n",
        "--negative-prompt",
        "--seed",
        "--param",
        "--timeout",
        "--poll-interval",
        "--provider-config",
        "--model",
        "--image",
    ],
}
outcomes: dict[int, int] = {}


@pytest.mark.parametrize("modality", ["video", "image"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), prompt=TEXT)
def test_fuzzed_generate_arguments(
    modality: str,
    data: st.DataObject,
    prompt: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TARASH_MOCK_DELAY", "0.001")
    chosen = data.draw(st.lists(st.sampled_from(OPTIONS[modality]), max_size=4, unique=True))
    argv = ["generate", modality, prompt, "--quiet", "--out", str(tmp_path)]
    for option in chosen:
        argv += [option, data.draw(VALUES)]
    code = main(argv)
    captured = capsys.readouterr()
    outcomes[code] = outcomes.get(code, 0) + 1
    assert code in DOCUMENTED, (argv, code, captured.err)
    assert "Traceback" not in captured.err
    if code not in (0, 2):
        assert captured.err.startswith("tarash: ") and captured.err.count("\n") == 1, captured.err
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert leftovers == []


def test_fuzzing_reached_both_successes_and_rejections() -> None:
    """The fuzzed inputs above were not all rejected (or all accepted) by argument parsing."""
    if not outcomes:
        pytest.skip("run together with test_fuzzed_generate_arguments")
    assert outcomes.get(0, 0) > 0, outcomes
    assert outcomes.get(4, 0) > 0, outcomes
    print(f"exit codes over {sum(outcomes.values())} fuzzed command lines: {dict(sorted(outcomes.items()))}")
