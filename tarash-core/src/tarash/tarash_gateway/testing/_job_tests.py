"""The conformance kit's tests of a submitted job: a deadline cancels it exactly once at the
provider, ``SubmittedJob.data`` is plain JSON without the key, and a ``JobRef`` rebuilt from a JSON
round trip can be polled and read to the end. They need the queue lifecycle (a blocking provider
skips them, with the reason). :class:`~tarash.tarash_gateway.testing.ProviderConformanceTests`
inherits them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import ClassVar

import attrs
import pytest

from ..exceptions import TimeoutError
from ..plugin import JobRef, JobStatus
from . import _checks
from ._harness import MODES, Harness, count_problems, fail, submitted_job

__all__ = ["JobTests"]

TERMINAL = ("completed", "failed", "cancelled")


class JobTests:
    """What the kit checks of a submitted job (a mixin of the suite; the deadlines are the suite's)."""

    cancel_deadline_seconds: ClassVar[float]
    fault_deadline_seconds: ClassVar[float]

    @pytest.mark.parametrize("mode", MODES)
    def test_deadline_cancels_the_job_once(self, tarash_harness: Harness, mode: str) -> None:
        h = tarash_harness
        h.require_lifecycle("cancelling on deadline")
        if not h.spec.capabilities.cancel:
            pytest.skip(f"{h.provider} does not claim Capabilities.cancel")
        modality = h.primary_modality()
        config = h.config(modality, "slow", timeout=self.cancel_deadline_seconds)
        before = h.counts()
        with pytest.raises(TimeoutError) as raised:
            h.generate(modality, config, mode)
        attempt = raised.value.attempts[-1]
        problems = []
        if attempt.cancel_status != "cancelled":
            problems.append(
                f"core's cancel outcome is {attempt.cancel_status!r} ({attempt.cancel_error or 'no error'})"
            )
        problems.extend(count_problems(before, h.counts(), {"cancel": 1}))
        fail(
            f"{h.provider} claims Capabilities.cancel but the timed-out job was not cancelled "
            "exactly once at the provider",
            problems,
        )

    def test_submitted_job_data_is_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        with submitted_job(h) as (_config, submitted):
            fail(
                "SubmittedJob.data must be JSON-safe and secret-free",
                _checks.json_problems(dict(submitted.data), secret=h.api_key, what="SubmittedJob.data"),
            )

    def test_job_resumes_from_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        h.require_lifecycle("resuming a job from its JobRef")
        if not h.spec.capabilities.resume:
            pytest.skip(f"{h.provider} declares Capabilities(resume=False)")
        modality = h.primary_modality()
        with submitted_job(h) as (config, submitted):
            ref = JobRef(
                provider=h.provider,
                model=config.model,
                modality=modality,  # type: ignore[arg-type]
                job_id=submitted.job_id,
                data=dict(submitted.data),
            )
            fail(
                "SubmittedJob.data must be JSON-safe and secret-free",
                _checks.json_problems(dict(submitted.data), secret=h.api_key, what="SubmittedJob.data"),
            )
            blob = json.dumps({**attrs.asdict(ref), "submitted_at": ref.submitted_at.isoformat()})
            loaded = json.loads(blob)
            resumed = JobRef(**{**loaded, "submitted_at": datetime.fromisoformat(loaded["submitted_at"])})
            deadline = time.monotonic() + self.fault_deadline_seconds * 3
            while True:
                status = h.call_hook("status", modality=modality, config=config, job=resumed)
                if not isinstance(status, JobStatus):
                    pytest.fail(
                        f"status of a JobRef rebuilt from JSON returned "
                        f"{type(status).__name__}, expected JobStatus",
                        pytrace=False,
                    )
                if status.state in TERMINAL or time.monotonic() > deadline:
                    break
                time.sleep(config.poll_interval)
            assert status.state == "completed", f"the resumed job ended {status.state!r}"
            response = h.call_hook("result", modality=modality, config=config, job=resumed)
            problems = _checks.response_problems(
                attrs.evolve(response, provider=h.provider), modality=modality, provider=h.provider
            )
            problems = [p for p in problems if "execution_metadata" not in p]
            if getattr(response, "request_id", None) != submitted.job_id:
                problems.append(
                    f"result's request_id is {getattr(response, 'request_id', None)!r}, "
                    f"expected the job id {submitted.job_id!r}"
                )
            fail("a job resumed from a JSON round trip of its JobRef cannot be finished", problems)
