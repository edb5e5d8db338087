"""An in-memory job service and a correct lifecycle provider on top of it.

The service advances a job one step per status call (queued at position 1, queued at position 0,
processing 30 %, processing 70 %, completed) and counts requests by kind, like a test server's
counters. ``config.provider_config["scenario"]`` selects a conformance-kit scenario. The planted
broken providers in :mod:`kitplanted.providers` subclass :class:`GoodProvider` and override one
helper each.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from tarash.tarash_gateway import get_provider
from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationResponse,
    VideoGenerationConfig,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import (
    CallContext,
    Capabilities,
    JobRef,
    JobStatus,
    ProviderSpec,
    SubmittedJob,
    hookimpl,
)

#: (state, queue_position, progress_percent) per status call.
STEPS: tuple[tuple[str, int | None, float | None], ...] = (
    ("queued", 1, None),
    ("queued", 0, None),
    ("processing", None, 30.0),
    ("processing", None, 70.0),
    ("completed", None, 100.0),
)

PROVIDERS: dict[str, GoodProvider] = {}


class Service:
    """Jobs and request counters of one provider."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.jobs: dict[str, dict[str, Any]] = {}

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def create(self, scenario: str) -> str:
        with self.lock:
            job_id = f"job-{len(self.jobs) + 1}"
            self.jobs[job_id] = {"scenario": scenario, "step": 0, "cancelled": False}
            return job_id

    def advance(self, job_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            job = self.jobs[job_id]
            step = job["step"]
            if job["scenario"] != "slow":
                job["step"] = step + 1
            return step, job

    def cancel(self, job_id: str) -> bool:
        with self.lock:
            self.counts["cancel"] += 1
            job = self.jobs[job_id]
            if job["cancelled"] or job["step"] >= len(STEPS):
                return False
            job["cancelled"] = True
            return True


class GoodProvider:
    """A provider that satisfies the whole conformance kit (hooks are methods of an instance)."""

    modalities: tuple[str, ...] = ("video", "image")
    steps = STEPS

    def __init__(self, name: str) -> None:
        self.name = name
        self.service = Service()
        PROVIDERS[name] = self

    # -- helpers the planted breaks override ---------------------------------------------------

    def capabilities(self) -> Capabilities:
        return Capabilities(cancel=True, queue_position=True, progress_percent=True, logs=True)

    def check_modality(self, modality: str) -> None:
        """Raise if this provider cannot generate ``modality``."""

    def log_submit(self, config: Any) -> None:
        """Log the submit (a good provider never logs the key)."""

    def fail(self, scenario: str, phase: str, config: Any) -> None:
        """Raise the error a real API's fault maps to, if ``scenario`` has one in ``phase``."""
        if phase == "connect" and scenario == "unreachable":
            raise HTTPConnectionError("connection refused", request_sent=False)
        if phase == "submit" and scenario == "rejected":
            raise ValidationError("prompt is not accepted", field="prompt", phase="submit")
        if phase == "submit" and scenario == "server_error":
            raise HTTPError("HTTP 503 from the service", status_code=503, phase="submit")
        if phase == "poll" and scenario == "rate_limited":
            raise HTTPError("HTTP 429 from the service", status_code=429, retry_after=60.0, phase="poll")

    def job_data(self, config: Any, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}"}

    def job_status(self, state: str, position: int | None, percent: float | None, step: int) -> Any:
        return JobStatus(
            state=state,
            queue_position=position,
            progress_percent=percent,  # type: ignore[arg-type]
            logs=tuple(f"step {n}" for n in range(step + 1)),
            raw={"step": step},
        )

    def cancel_job(self, job_id: str) -> bool:
        return self.service.cancel(job_id)

    def video(self, job_id: str, is_async: bool) -> Any:
        return f"https://media.kit.invalid/{job_id}.mp4"

    # -- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(name=self.name, modalities=set(self.modalities), capabilities=self.capabilities())
        ]

    @hookimpl
    def submit(self, config: Any, request: Any, context: CallContext) -> SubmittedJob:
        if not config.api_key:
            raise ValidationError("no API key", field="api_key")
        self.check_modality(context.modality)
        scenario = config.provider_config.get("scenario", "ok")
        self.fail(scenario, "connect", config)
        self.log_submit(config)
        self.service.count("submit")
        self.fail(scenario, "submit", config)
        job_id = self.service.create(scenario)
        return SubmittedJob(job_id=job_id, data=self.job_data(config, job_id))

    @hookimpl
    def status(self, config: Any, job: JobRef, context: CallContext) -> Any:
        self.service.count("status")
        step, record = self.service.advance(job.job_id)
        self.fail(record["scenario"], "poll", config)
        if record["cancelled"]:
            return JobStatus(state="cancelled")
        if record["scenario"] == "slow":
            return self.job_status("processing", None, 10.0, 2)
        state, position, percent = self.steps[min(step, len(self.steps) - 1)]
        if state == "completed" and record["scenario"] == "job_failed":
            return JobStatus(
                state="failed",
                error=GenerationFailedError(f"job {job.job_id} failed at the service", request_id=job.job_id),
            )
        return self.job_status(state, position, percent, step)

    @hookimpl
    def result(self, config: Any, job: JobRef, context: CallContext) -> Any:
        return self.make_result(job, is_async=False)

    @hookimpl
    def cancel(self, config: Any, job: JobRef, context: CallContext) -> bool:
        return self.cancel_job(job.job_id)

    @hookimpl
    async def submit_async(self, config: Any, request: Any, context: CallContext) -> SubmittedJob:
        return self.submit(config, request, context)

    @hookimpl
    async def status_async(self, config: Any, job: JobRef, context: CallContext) -> Any:
        return self.status(config, job, context)

    @hookimpl
    async def result_async(self, config: Any, job: JobRef, context: CallContext) -> Any:
        return self.make_result(job, is_async=True)

    @hookimpl
    async def cancel_async(self, config: Any, job: JobRef, context: CallContext) -> bool:
        return self.cancel_job(job.job_id)

    def make_result(self, job: JobRef, *, is_async: bool) -> Any:
        self.service.count("result")
        if job.modality == "video":
            return VideoGenerationResponse(
                request_id=job.job_id,
                video=self.video(job.job_id, is_async),
                content_type="video/mp4",
                raw_response={"id": job.job_id},
            )
        return ImageGenerationResponse(
            request_id=job.job_id,
            images=[f"https://media.kit.invalid/{job.job_id}.png"],
            raw_response={"id": job.job_id},
        )


def make_config_factory(name: str, modalities: tuple[str, ...] | None = None) -> Callable[[str, str], Any]:
    """The kit's ``make_config`` for a planted provider (its declared modalities by default)."""
    allowed = get_provider(name).spec.modalities if modalities is None else modalities

    def make(modality: str, scenario: str) -> Any:
        if modality not in allowed:
            return None
        config = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
        return config(
            provider=name,
            model=f"{name}-{modality}",
            poll_interval=0.01,
            timeout=10,
            provider_config={"scenario": scenario},
        )

    return make


def counts(name: str) -> dict[str, int]:
    service = PROVIDERS[name].service
    with service.lock:
        return dict(service.counts)
