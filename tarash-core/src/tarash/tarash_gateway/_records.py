"""The records lifecycle hooks take and return (re-exported by :mod:`tarash.tarash_gateway.plugin`).

They live apart from the registration records so that provider discovery does not build them:
``plugin`` loads this module the first time one of these names is looked up (a generation, or an
entry module that imports them at run time rather than under ``TYPE_CHECKING``). The records of the
``reconcile`` hook, which only ``resume()`` calls, are in :mod:`._lost_submissions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import attrs

from .plugin import Modality

__all__ = [
    "CallContext",
    "JobRef",
    "JobState",
    "JobStatus",
    "SubmittedJob",
]

JobState = Literal["queued", "processing", "completed", "failed", "cancelled"]


def _lines(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class CallContext:
    """Passed to every lifecycle hook call.

    Attributes:
        provider: the provider name being called (a plugin may register several).
        modality: ``"video"`` or ``"image"``.
        timeout: seconds left before the generation's deadline; use it as the HTTP timeout.
        attempt: 1-based attempt number in the fallback chain.
        idempotency_key: stable for one logical submit; send it if the provider supports it.
        base_url: the API root in effect (``config.base_url``, else ``ProviderSpec.base_url``);
            relative ``Request.url`` paths are joined to it.
        api_key: the key core resolved (``config.api_key``, else ``ProviderSpec.api_key_env``,
            else the ``resolve_api_key`` hook); registered as a secret and hidden from ``repr``.
            Core adds it to requests itself (``Request.auth``): read it only to sign something.
        webhook_url: where the provider should deliver the job's completion, if the caller asked.
    """

    provider: str
    modality: Modality
    timeout: float
    attempt: int = 1
    idempotency_key: str = ""
    base_url: str = ""
    api_key: str | None = attrs.field(default=None, repr=False)
    webhook_url: str | None = None


@attrs.frozen(kw_only=True)
class SubmittedJob:
    """What ``submit`` returns: the provider's job id plus any JSON-safe state needed to poll it.

    Attributes:
        job_id: the provider's id for the job.
        data: JSON-serialisable provider state (e.g. status/result URLs). Never put secrets here:
            it is stored in job handles and the ledger.
        poll_after: seconds the provider suggests waiting before the first status call.
    """

    job_id: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
    poll_after: float | None = None


@attrs.frozen(kw_only=True)
class JobRef:
    """A submitted job as core tracks it; passed to ``status``, ``result`` and ``cancel``."""

    provider: str
    model: str
    modality: Modality
    job_id: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
    submitted_at: datetime = attrs.field(factory=lambda: datetime.now(timezone.utc))


@attrs.frozen(kw_only=True)
class JobStatus:
    """What ``status`` returns: one observation of a job.

    Attributes:
        state: queued, processing, completed, failed or cancelled.
        queue_position: 0 means next in line.
        progress_percent: 0-100 when the provider reports it.
        logs: new log lines since the last status (or all of them; core de-duplicates).
        poll_after: seconds the provider suggests waiting before the next status call.
        error: for ``failed``: the typed error to raise (defaults to GenerationFailedError).
        raw: the provider's status payload (redacted by core before it reaches callbacks).
    """

    state: JobState
    queue_position: int | None = None
    progress_percent: float | None = None
    logs: tuple[str, ...] = attrs.field(default=(), converter=_lines)
    poll_after: float | None = None
    error: BaseException | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict)
