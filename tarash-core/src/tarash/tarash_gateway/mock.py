"""The offline mock provider (built in, provider name ``mock``).

Enable it per config with ``mock=MockConfig(...)`` (the configured provider is then never called)
or use ``provider="mock"`` directly. It goes through the same lifecycle as real providers (submit,
status polls, result, cancel), so deadlines, fallbacks, progress and job handles behave as they
will in production. It needs no network: videos are small bundled MP4 test-pattern clips picked by
aspect ratio and duration, images are PNGs drawn on the fly; both come back as ``file://`` URLs or
as bytes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._mock_media import (
    MEDIA_FOLDER,
    find_best_clip,
    image_response,
    image_size,
    render_png,
    video_response,
)
from .exceptions import ValidationError
from .models import MockConfig, MockPollingConfig, MockResponse
from .plugin import Capabilities, ModelFamily, ProviderSpec, hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from .plugin import CallContext, JobRef, JobStatus, SubmittedJob

    #: The folder of the bundled clips (``find_best_clip(...)["file"]`` is relative to it).
    MEDIA_DIR: Path

__all__ = [
    "DEMO_POLLING",
    "MockConfig",
    "MockPollingConfig",
    "MockResponse",
    "find_best_clip",
    "render_png",
]


def __getattr__(name: str) -> Any:
    """``MEDIA_DIR`` is built on first use: pathlib is not imported by provider discovery."""
    if name == "MEDIA_DIR":
        from pathlib import Path

        return Path(MEDIA_FOLDER)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The polling simulation used when ``provider="mock"`` is chosen without a MockConfig.
DEMO_POLLING = MockPollingConfig(
    status_sequence=("queued", "queued", "processing", "processing", "processing", "processing", "completed"),
    progress_percentages=(0, 0, 15, 40, 65, 90, 100),
    queue_positions=(1, 0),
    delay_between_updates=0.3,
)

#: The aspect ratios of the bundled clips (``tarash models mock`` lists them).
VIDEO_ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "21:9")
#: The largest width and height of a drawn image.
MAX_IMAGE_SIDE = 2048

_jobs: dict[str, int] = {}
_jobs_lock = threading.Lock()


@hookimpl
def register_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            name="mock",
            modalities={"video", "image"},
            capabilities=Capabilities(
                cancel=True, queue_position=True, progress_percent=True, logs=True, idempotency_key=True
            ),
            models=(
                ModelFamily(
                    prefix="mock",
                    modality="video",
                    name="Mock video",
                    allowed={"aspect_ratio": VIDEO_ASPECT_RATIOS},
                    description="bundled test-pattern MP4 clips, offline",
                ),
                ModelFamily(
                    prefix="mock-image",
                    modality="image",
                    name="Mock image",
                    description=f"PNG test patterns, offline, up to {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}",
                ),
            ),
            description="Offline mock provider: real local MP4/PNG files, simulated queue.",
        )
    ]


@hookimpl
def pricing_rules(provider: str) -> list[Any]:
    """The mock bills video per second (4 s when the request sets no duration; a price per
    resolution where one is set) and images each."""
    # lazy: discovery loads this module; the cost records load at the first pricing
    from ._cost import PricingRule

    return [
        PricingRule(
            prefix="", modality="video", unit="second", variant_field="resolution", default_seconds=4
        ),
        PricingRule(prefix="", modality="image", unit="image"),
    ]


@hookimpl
def unit_prices(config: Any, context: CallContext) -> Any:
    """The mock's "price API": ``MockConfig.price`` (per second of video, per image), if set."""
    # lazy: discovery loads this module; the cost records load at the first pricing
    from ._cost import UnitPrice

    price = _mock_config(config).price
    if price is None:
        return None
    return UnitPrice(
        unit="second" if context.modality == "video" else "image",
        price=price,
        source="provider-price-api",
        reference="MockConfig.price",
    )


def _mock_config(config: Any) -> MockConfig:
    mock = getattr(config, "mock", None)
    if mock is not None:
        return mock  # type: ignore[no-any-return]
    delay = config.provider_config.get("delay")
    polling = DEMO_POLLING
    if delay is not None:
        import attrs

        polling = attrs.evolve(DEMO_POLLING, delay_between_updates=_delay(delay))
    return MockConfig(polling=polling)


def _delay(value: Any) -> float:
    """``provider_config["delay"]``: seconds (a number, or a string holding one) from 0 to 3600."""
    import contextlib
    import math

    seconds = math.nan
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            seconds = float(value)
    if not 0 <= seconds <= 3600:
        raise ValidationError(
            f"delay: expected a number of seconds from 0 to 3600, got {value!r}",
            field="provider_config.delay",
            value=value,
        )
    return seconds


def _check_request(config: Any, request: Any, modality: str) -> None:
    """Refuse what the mock's own models cannot produce (as ``tarash models mock`` lists them).

    Only when the mock is the chosen provider: standing in for another provider
    (``config.mock``), it accepts that provider's values.
    """
    if config.provider != "mock":
        return
    ratio = request.aspect_ratio
    if modality == "video":
        if ratio is not None and ratio not in VIDEO_ASPECT_RATIOS:
            raise ValidationError(
                f"aspect_ratio={ratio!r} is not allowed; allowed values: {', '.join(VIDEO_ASPECT_RATIOS)}",
                field="aspect_ratio",
                value=ratio,
                allowed=VIDEO_ASPECT_RATIOS,
            )
        return
    if ratio is not None and ratio != "auto" and _positive_pair(ratio, ":") is None:
        raise ValidationError(
            f"aspect_ratio={ratio!r}: expected WIDTH:HEIGHT with both above 0, or 'auto'",
            field="aspect_ratio",
            value=ratio,
        )
    size = request.size
    pair = _positive_pair(size, "x") if size is not None else None
    if size is not None and (pair is None or max(pair) > MAX_IMAGE_SIDE):
        raise ValidationError(
            f"size={size!r}: expected WIDTHxHEIGHT, each from 1 to {MAX_IMAGE_SIDE}",
            field="size",
            value=size,
        )


def _positive_pair(text: str, separator: str) -> tuple[int, int] | None:
    """``"16:9"`` -> ``(16, 9)`` with separator ``":"``; None unless both are integers above 0."""
    import re

    match = re.fullmatch(rf"([0-9]{{1,6}}){re.escape(separator)}([0-9]{{1,6}})", text.strip().lower())
    if match is None or 0 in (pair := (int(match[1]), int(match[2]))):
        return None
    return pair


def _pick(mock: MockConfig, request: Any) -> int:
    seed = mock.seed if mock.seed is not None else getattr(request, "seed", None)
    import random

    rng = random.Random(seed) if seed is not None else random.Random()
    weights = [r.weight for r in mock.responses]
    return rng.choices(range(len(mock.responses)), weights=weights, k=1)[0]


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    _check_request(config, request, context.modality)
    mock = _mock_config(config)
    index = _pick(mock, request)
    outcome = mock.responses[index]
    polling = mock.polling
    if outcome.error is not None and (polling is None or not polling.enabled):
        raise _fresh(outcome.error)
    # lazy: discovery loads this module; records and ids load at the first call
    from .plugin import SubmittedJob
    from .utils import generate_unique_id

    job_id = f"mock_{generate_unique_id()}"
    with _jobs_lock:
        _jobs[job_id] = 0
    delay = polling.delay_between_updates if polling and polling.enabled else 0.0
    import time

    data: dict[str, Any] = {"outcome": index, "submitted_at": time.time()}
    if context.modality == "video":
        data.update(aspect_ratio=request.aspect_ratio, duration=request.duration_seconds)
    else:
        width, height = image_size(request)
        data.update(width=width, height=height, n=request.n)
    return SubmittedJob(job_id=job_id, data=data, poll_after=delay)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    # lazy: discovery loads this module; records and ids load at the first call
    from .plugin import JobStatus

    mock = _mock_config(config)
    polling = mock.polling
    outcome = mock.responses[int(job.data.get("outcome", 0))]
    if polling is None or not polling.enabled:
        return JobStatus(state="completed", progress_percent=100.0)
    last_step = len(polling.status_sequence) - 1
    with _jobs_lock:
        counter = _jobs.get(job.job_id)
        if counter == -1:
            return JobStatus(state="cancelled")
        step = _elapsed_step(job, polling) if counter is None else min(counter, last_step)
        if counter is not None:
            _jobs[job.job_id] = step + 1
    last = step == last_step
    state = polling.status_sequence[step]
    if last and outcome.error is not None:
        return JobStatus(state="failed", error=_fresh(outcome.error), raw={"step": step})
    percents = polling.progress_percentages
    percent = percents[step] if percents is not None else _default_percent(state)
    positions = polling.queue_positions or ()
    position = positions[step] if state == "queued" and step < len(positions) else None
    custom = polling.custom_updates[step] if polling.custom_updates is not None else {}
    logs = (f"mock step {step + 1}/{len(polling.status_sequence)}: {state}",)
    return JobStatus(
        state=state,  # type: ignore[arg-type]
        progress_percent=percent,
        queue_position=position,
        logs=logs,
        poll_after=polling.delay_between_updates,
        raw={"step": step, **custom},
    )


def _fresh(error: BaseException) -> BaseException:
    """A copy of a configured error for this call: no earlier call's traceback, model or job id.

    An exception whose class cannot be rebuilt from its state is raised as configured.
    """
    import copy

    try:
        return copy.copy(error)
    except Exception:
        return error


def _elapsed_step(job: JobRef, polling: MockPollingConfig) -> int:
    """The step a job submitted by another process has reached: one per delay since its submit."""
    import time

    last_step = len(polling.status_sequence) - 1
    submitted_at = job.data.get("submitted_at")
    delay = polling.delay_between_updates
    if not isinstance(submitted_at, (int, float)) or delay <= 0:
        return last_step
    return min(int((time.time() - submitted_at) / delay), last_step)


def _default_percent(state: str) -> float | None:
    return {"queued": 0.0, "processing": 50.0, "completed": 100.0}.get(state)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Any:
    mock = _mock_config(config)
    outcome = mock.responses[int(job.data.get("outcome", 0))]
    with _jobs_lock:
        _jobs.pop(job.job_id, None)
    if outcome.mock_response is not None:
        import attrs

        return attrs.evolve(outcome.mock_response, request_id=job.job_id, is_mock=True)
    if job.modality == "video":
        return video_response(config, job, outcome)
    return image_response(config, job, outcome)


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> bool:
    """Cancel a job of this process, or one submitted elsewhere that has not reached its simulated end."""
    polling = _mock_config(config).polling
    with _jobs_lock:
        known = job.job_id in _jobs
        running = (
            polling is not None
            and polling.enabled
            and _elapsed_step(job, polling) < (len(polling.status_sequence) - 1)
        )
        if known or running:
            _jobs[job.job_id] = -1
            return True
    return False
