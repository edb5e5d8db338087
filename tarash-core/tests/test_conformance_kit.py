"""The conformance kit's own tests: it passes conforming providers and catches each planted break.

The kit runs in child pytest processes, exactly as a plugin's test suite runs it, over the
providers planted in ``kit_fixtures/installed/kitplanted`` (made discoverable through the
``kit_planted-0.1.0.dist-info`` directory on PYTHONPATH; the suite is
``kit_fixtures/suite/kit_suite.py``). Each test below asserts one outcome of those runs by test id,
including the message a plugin author would read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

KIT = Path(__file__).resolve().parent / "kit_fixtures"
SUITE = KIT / "suite"
PLANTED = (
    "kitgood",
    "kitvideo",
    "kitleakerror",
    "kitleaklog",
    "kitstatusdict",
    "kitfakecancel",
    "kitoutoforder",
    "kitwrongtypes",
    "kitnotjson",
    "kitsecretjob",
    "kitheavy",
    "kitundeclared",
    "kitoverclaims",
    "kitbadmapping",
    "kitnocancelhook",
    "kitblocking",
    "kitblockingretry",
    "kitownhttp",
    "kitswallow",
    "kitkeyinrequest",
)

#: (planted provider, kit test that must fail, text its failure message must contain).
BREAKS = [
    pytest.param(
        "kitleakerror",
        "test_secret_never_leaks[sync]",
        "server_error: str() of ServiceError (exception chain depth 1): "
        "...ST /jobs failed (request headers: {'Authorization': 'Bearer <API KEY>'})...",
        id="key in an exception's cause",
    ),
    pytest.param(
        "kitleaklog",
        "test_secret_never_leaks[async]",
        "log records (DEBUG): ...",
        id="key in a DEBUG log record",
    ),
    pytest.param(
        "kitleaklog",
        "test_secret_never_leaks[sync]",
        "Authorization: <API KEY>",
        id="key in a DEBUG log record, sync",
    ),
    pytest.param(
        "kitstatusdict",
        "test_generate[video-sync]",
        "sync video generation with make_config('video', 'ok') failed: "
        "GenerationFailedError: kitstatusdict status returned dict, expected JobStatus",
        id="status returns a dict",
    ),
    pytest.param(
        "kitfakecancel",
        "test_deadline_cancels_the_job_once[sync]",
        "kitfakecancel claims Capabilities.cancel but the timed-out job was not cancelled "
        "exactly once at the provider\n  - the server received 0 cancel request(s), "
        "expected 1",
        id="claims cancel, never cancels",
    ),
    pytest.param(
        "kitoutoforder",
        "test_progress_contract[video-sync]",
        "status went back from 'processing' to 'queued'",
        id="progress out of order",
    ),
    pytest.param(
        "kitwrongtypes",
        "test_progress_contract[image-async]",
        # Core drops a queue position that is not an int >= 0, so the kit sees none at all.
        "Capabilities.queue_position is True but no queued update had a queue_position",
        id="progress field of the wrong type",
    ),
    pytest.param(
        "kitnotjson",
        "test_submitted_job_data_is_json",
        "SubmittedJob.data is not JSON-serialisable (TypeError: Object of type datetime",
        id="job data not JSON",
    ),
    pytest.param(
        "kitsecretjob",
        "test_submitted_job_data_is_json",
        "SubmittedJob.data contains the API key",
        id="key in job data",
    ),
    pytest.param(
        "kitsecretjob",
        "test_job_resumes_from_json",
        "SubmittedJob.data contains the API key",
        id="key in a resumable job handle",
    ),
    pytest.param(
        "kitheavy",
        "test_entry_module_imports_are_light",
        "import them inside your hooks (or list them in allowed_entry_imports)\n"
        "  - httpx (imported by kitplanted.heavy at ",
        id="entry module imports httpx",
    ),
    pytest.param(
        "kitundeclared",
        "test_unsupported_modality_raises[image]",
        "make_config('image', 'ok') returned a config, so kitundeclared can generate "
        "image, but ProviderSpec.modalities = ['video']: declare 'image'",
        id="supports a modality it does not declare",
    ),
    pytest.param(
        "kitoverclaims",
        "test_generate[image-async]",
        "ProviderSpec.modalities declares 'image' but async generation raised GenerationFailedError",
        id="declares a modality it does not support",
    ),
    pytest.param(
        "kitbadmapping",
        "test_error_taxonomy[unreachable-sync]",
        "scenario 'unreachable' (the provider's endpoint refuses connections (e.g. a closed "
        "port)) must raise HTTPConnectionError in phase submit\n  - got "
        "UnknownSubmissionError",
        id="refused connection mapped as sent",
    ),
    pytest.param(
        "kitbadmapping",
        "test_error_taxonomy[rate_limited-async]",
        "must raise HTTPError in phase poll\n  - got GenerationFailedError",
        id="429 mapped as a failed job",
    ),
    pytest.param(
        "kitnocancelhook",
        "test_capabilities_match_hooks",
        "Capabilities.cancel is True but there is no cancel hook",
        id="claims cancel without a cancel hook",
    ),
    pytest.param(
        "kitownhttp",
        "test_requests_go_through_core[sync]",
        "the server received 7 request(s) but core's transport sent 2: kitownhttp sends HTTP of "
        "its own (a client or SDK in a hook). Yield Request records from the hooks",
        id="sends its own HTTP",
    ),
    pytest.param(
        "kitownhttp",
        "test_requests_go_through_core[async]",
        "the server received 7 request(s) but core's transport sent 2",
        id="sends its own HTTP, async",
    ),
    pytest.param(
        "kitswallow",
        "test_http_errors_reach_core",
        "submit returned SubmittedJob(job_id='job-made-up'",
        id="swallows a thrown HTTPError",
    ),
    pytest.param(
        "kitswallow",
        "test_http_errors_reach_core",
        "although the provider answered with a 5xx error (make_config(..., 'server_error')): the "
        "flow swallowed the HTTPError core threw into it",
        id="swallows a thrown HTTPError: the advice",
    ),
    pytest.param(
        "kitkeyinrequest",
        "test_generate[video-sync]",
        "kitkeyinrequest put the API key into a request it described (a header, the URL, the query "
        "or the body) and core refused to send it. Core adds the key itself: declare "
        "ProviderSpec.auth_header and auth_scheme",
        id="key in a request it describes",
    ),
    pytest.param(
        "kitkeyinrequest",
        "test_generate[image-async]",
        "kitkeyinrequest put the API key into a request it described",
        id="key in a request it describes, async",
    ),
    pytest.param(
        "kitblockingretry",
        "test_error_taxonomy[lost_answer-sync]",
        "scenario 'lost_answer' (the submit (or blocking generation) reaches the server, which closes "
        "the connection without answering) must raise UnknownSubmissionError in phase submit\n"
        "  - the server received 2 submit request(s), expected 1",
        id="blocking call resent after a lost answer",
    ),
]


@attrs.frozen
class Outcome:
    status: str
    message: str


def _batches() -> list[list[str]]:
    """Pytest arguments of the child runs, run in parallel (the kit mostly waits on deadlines)."""
    breaks = sorted(
        {
            f"kit_suite.py::Test{p.values[0].capitalize()}::{p.values[1]}"  # type: ignore[attr-defined]
            for p in BREAKS
        }
    )
    slow = "error_taxonomy or secret_never_leaks"
    return [
        ["kit_suite.py::TestKitgood", "-k", slow],
        ["kit_suite.py::TestKitgood", "-k", f"not ({slow})"],
        ["kit_suite.py::TestKitvideo", "-k", f"not ({slow})"],
        ["kit_suite.py::TestKitblocking"],
        breaks,
    ]


def _start(batch: list[str], report: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARASH_", "PYTEST_"))}
    env.update(
        PYTHONPATH=str(KIT / "installed"), PYTHONDONTWRITEBYTECODE="1", TARASH_PLUGINS=",".join(PLANTED)
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            *batch,
        ],
        cwd=SUITE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _outcomes(report: Path) -> Iterator[tuple[str, Outcome]]:
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if problem is None:
            yield test_id, Outcome("passed", "")
        else:
            yield (
                test_id,
                Outcome(problem.tag, f"{problem.get('message', '')}\n{problem.text or ''}"),
            )


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    out = tmp_path_factory.mktemp("kit-run")
    runs = [
        (_start(batch, out / f"batch{index}.xml"), out / f"batch{index}.xml")
        for index, batch in enumerate(_batches())
    ]
    outcomes: dict[str, Outcome] = {}
    for process, report in runs:
        output, _ = process.communicate(timeout=300)
        assert report.exists(), f"the kit run crashed:\n{output[-3000:]}"
        outcomes.update(_outcomes(report))
    return outcomes


def _of(outcomes: dict[str, Outcome], provider: str) -> dict[str, Outcome]:
    prefix = f"Test{provider.capitalize()}::"
    return {k.removeprefix(prefix): v for k, v in outcomes.items() if k.startswith(prefix)}


def test_the_kit_passes_a_provider_that_conforms(kit_run: dict[str, Outcome]) -> None:
    results = _of(kit_run, "kitgood")
    assert {name: o for name, o in results.items() if o.status in ("failure", "error")} == {}
    skipped = {name: o.message.splitlines()[0] for name, o in results.items() if o.status == "skipped"}
    assert skipped == {
        "test_unsupported_modality_raises[video]": "kitgood declares video",
        "test_unsupported_modality_raises[image]": "kitgood declares image",
    }
    assert sum(o.status == "passed" for o in results.values()) == 33


def test_the_kit_skips_what_a_provider_does_not_claim_with_the_reason(
    kit_run: dict[str, Outcome],
) -> None:
    results = _of(kit_run, "kitvideo")
    assert {name: o for name, o in results.items() if o.status in ("failure", "error")} == {}
    skipped = {name: o.message.splitlines()[0] for name, o in results.items() if o.status == "skipped"}
    no_image = "kitvideo does not declare image (ProviderSpec.modalities = ['video'])"
    assert skipped == {
        "test_generate[image-sync]": no_image,
        "test_generate[image-async]": no_image,
        "test_progress_contract[image-sync]": no_image,
        "test_progress_contract[image-async]": no_image,
        "test_unsupported_modality_raises[video]": "kitvideo declares video",
        "test_deadline_cancels_the_job_once[sync]": "kitvideo does not claim Capabilities.cancel",
        "test_deadline_cancels_the_job_once[async]": "kitvideo does not claim Capabilities.cancel",
    }
    assert results["test_unsupported_modality_raises[image]"].status == "passed"


@pytest.mark.parametrize(("provider", "test", "message"), BREAKS)
def test_the_kit_catches_a_planted_break(
    kit_run: dict[str, Outcome], provider: str, test: str, message: str
) -> None:
    outcome = _of(kit_run, provider)[test]
    assert outcome.status == "failure", outcome
    assert message in outcome.message


def test_the_kit_runs_a_blocking_provider_and_skips_what_needs_a_job(kit_run: dict[str, Outcome]) -> None:
    results = _of(kit_run, "kitblocking")
    assert {name: o for name, o in results.items() if o.status in ("failure", "error")} == {}
    skipped = {name: o.message.splitlines()[0] for name, o in results.items() if o.status == "skipped"}
    blocking = (
        "kitblocking is a blocking provider (generate_video/generate_image, no submit hook): "
        "there is no job to poll, cancel or resume, so "
    )
    for mode in ("sync", "async"):
        for scenario in ("rate_limited", "job_failed"):
            reason = skipped.pop(f"test_error_taxonomy[{scenario}-{mode}]")
            assert reason.startswith(blocking + f"scenario {scenario!r} (")
            assert reason.endswith(") does not apply")
    assert skipped == {
        "test_unsupported_modality_raises[video]": "kitblocking declares video",
        "test_unsupported_modality_raises[image]": "kitblocking declares image",
        **{
            f"test_progress_contract[{m}-{api}]": blocking
            + "the progress contract (queued -> processing -> completed) does not apply"
            for m in ("video", "image")
            for api in ("sync", "async")
        },
        "test_deadline_cancels_the_job_once[sync]": blocking + "cancelling on deadline does not apply",
        "test_deadline_cancels_the_job_once[async]": blocking + "cancelling on deadline does not apply",
        "test_submitted_job_data_is_json": blocking + "SubmittedJob.data does not apply",
        "test_job_resumes_from_json": blocking + "resuming a job from its JobRef does not apply",
    }
    for mode in ("sync", "async"):
        assert results[f"test_error_taxonomy[lost_answer-{mode}]"].status == "passed"
