"""What a generation returns: responses, attempt and execution metadata, progress updates."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .. import _validators as v
from .._cost import Cost, total
from .._redact import redact, redact_text
from ..exceptions import ValidationError

if TYPE_CHECKING:
    from .._outputs import SavedOutput
from ._media import AnyDict, MediaType, StatusType, _media_validator, _to_dict, _to_list, _to_media

__all__ = [
    "AttemptMetadata",
    "ExecutionMetadata",
    "ImageGenerationResponse",
    "ImageGenerationUpdate",
    "VideoGenerationResponse",
    "VideoGenerationUpdate",
]


def _scrubbed(value: Any) -> Any:
    """Known secrets and credential-looking tokens removed from text; other values unchanged."""
    return redact_text(value) if isinstance(value, str) else value


def _scrubbed_lines(value: Any) -> tuple[Any, ...]:
    return tuple(_scrubbed(line) for line in value)


def _redacted_dict(value: Any) -> Any:
    """A provider payload as a redacted dict (credential keys, known secrets, URL tokens)."""
    return redact(dict(value)) if isinstance(value, Mapping) else _to_dict(value)


@attrs.frozen(kw_only=True)
class AttemptMetadata:
    """One attempt in a fallback chain (timestamps are timezone-aware UTC)."""

    provider: str
    model: str
    attempt_number: int
    started_at: datetime
    ended_at: datetime | None = None
    status: Literal["success", "failed", "skipped"] = "failed"
    error_type: str | None = None
    error_message: str | None = attrs.field(default=None, converter=_scrubbed)
    is_retryable: bool | None = None
    request_id: str | None = None
    phase: str | None = None
    cancel_status: Literal["cancelled", "finished", "failed", "unsupported"] | None = None
    cancel_error: str | None = attrs.field(default=None, converter=_scrubbed)
    #: What the attempt cost (zero when refused before submit; an estimate until billed), or
    #: None when no price is known.
    cost: Cost | None = None

    @property
    def elapsed_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@attrs.frozen(kw_only=True)
class ExecutionMetadata:
    """Every attempt of one generation, in order."""

    total_attempts: int
    successful_attempt: int | None
    attempts: tuple[AttemptMetadata, ...]
    fallback_triggered: bool
    configs_in_chain: int

    @property
    def total_elapsed_seconds(self) -> float | None:
        ends = [a.ended_at for a in self.attempts if a.ended_at is not None]
        if not self.attempts or not ends:
            return None
        return (max(ends) - self.attempts[0].started_at).total_seconds()

    @property
    def total_cost(self) -> Cost | None:
        """The attempts' costs summed (failed-but-billed ones included), or None if none is known."""
        return total([attempt.cost for attempt in self.attempts])


def _status_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value not in v.STATUSES:
        raise v.fail(inst, attr, value, "a status", v.STATUSES)


@attrs.frozen(kw_only=True)
class VideoGenerationResponse:
    """A finished video. ``video`` is a URL (https or file) or :class:`MediaContent`.

    ``raw_response`` is the provider's answer with credentials redacted.
    """

    request_id: str = attrs.field(validator=v.string(max_len=2000))
    video: MediaType = attrs.field(converter=_to_media, validator=_media_validator(False))
    content_type: str | None = None
    audio_url: str | None = None
    duration: float | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    status: Literal["completed", "failed"] = attrs.field(
        default="completed",
        validator=v.one_of(("completed", "failed"), optional=False),
    )
    is_mock: bool = False
    raw_response: AnyDict = attrs.field(factory=dict, converter=_redacted_dict, repr=False)
    execution_metadata: ExecutionMetadata | None = None
    provider: str | None = None
    model: str | None = None
    expires_at: datetime | None = None

    def download(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Save the outputs to ``dest`` (a directory, or a file path for one output) before they
        expire; each file's SHA-256 is recorded in the job's ledger history.

        ``options``: ``max_bytes``, ``timeout``, ``verify`` (an ``ssl.SSLContext``). Raises
        OutputExpiredError past ``expires_at`` or when the provider already deleted an output.
        """
        # lazy, and the one upward import of this module: the download path is engine-level
        from .._outputs import download_outputs

        return download_outputs(self, dest, **options)

    async def download_async(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Async :meth:`download`."""
        # lazy, and the one upward import of this module: the download path is engine-level
        from .._outputs import download_outputs_async

        return await download_outputs_async(self, dest, **options)


@attrs.frozen(kw_only=True)
class ImageGenerationResponse:
    """Finished images: URLs (https, file) or data URIs."""

    request_id: str = attrs.field(validator=v.string(max_len=2000))
    images: list[str] = attrs.field(converter=_to_list)
    content_type: str = "image/png"
    status: Literal["completed", "failed"] = attrs.field(
        default="completed",
        validator=v.one_of(("completed", "failed"), optional=False),
    )
    is_mock: bool = False
    revised_prompt: str | None = None
    raw_response: AnyDict = attrs.field(factory=dict, converter=_redacted_dict, repr=False)
    execution_metadata: ExecutionMetadata | None = None
    provider: str | None = None
    model: str | None = None
    expires_at: datetime | None = None

    def download(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Save the outputs to ``dest`` (a directory, or a file path for one output) before they
        expire; each file's SHA-256 is recorded in the job's ledger history.

        ``options``: ``max_bytes``, ``timeout``, ``verify`` (an ``ssl.SSLContext``). Raises
        OutputExpiredError past ``expires_at`` or when the provider already deleted an output.
        """
        # lazy, and the one upward import of this module: the download path is engine-level
        from .._outputs import download_outputs

        return download_outputs(self, dest, **options)

    async def download_async(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Async :meth:`download`."""
        # lazy, and the one upward import of this module: the download path is engine-level
        from .._outputs import download_outputs_async

        return await download_outputs_async(self, dest, **options)

    def __attrs_post_init__(self) -> None:
        if not self.images or not all(isinstance(i, str) and i for i in self.images):
            raise ValidationError(
                "ImageGenerationResponse.images must be a non-empty list of URLs",
                field="images",
                value=self.images,
                phase="result",
            )


def _percent(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise v.fail(inst, attr, value, "a percentage between 0 and 100")


def _update_str(update: VideoGenerationUpdate | ImageGenerationUpdate) -> str:
    """``processing 40%``, ``queued (queue position 2)``, ``failed: <error>``: one short line."""
    text: str = update.status
    if update.progress_percent is not None:
        text += f" {update.progress_percent:g}%"
    if update.queue_position is not None:
        text += f" (queue position {update.queue_position})"
    if update.error:
        text += f": {update.error}"
    return text


@attrs.frozen(kw_only=True)
class VideoGenerationUpdate:
    """A progress update passed to ``on_progress``.

    ``status`` is queued/processing/completed/failed; ``queue_position`` (0 = next) and
    ``progress_percent`` are set when the provider reports them; ``attempt`` is the 1-based attempt
    number in the fallback chain; ``update`` is the provider's raw status payload (redacted), and
    ``logs`` and ``error`` are scrubbed of secrets too. ``str(update)`` is one short line
    (``processing 40%``, ``queued (queue position 2)``), so ``on_progress=print`` stays readable.
    """

    request_id: str
    status: StatusType = attrs.field(validator=_status_validator)
    progress_percent: float | None = attrs.field(default=None, validator=_percent)
    update: AnyDict = attrs.field(factory=dict, converter=_redacted_dict)
    result: VideoGenerationResponse | None = None
    error: str | None = attrs.field(default=None, converter=_scrubbed)
    queue_position: int | None = None
    logs: tuple[str, ...] = attrs.field(default=(), converter=_scrubbed_lines)
    attempt: int = 1
    provider: str | None = None
    model: str | None = None
    elapsed_seconds: float | None = None

    __str__ = _update_str


@attrs.frozen(kw_only=True)
class ImageGenerationUpdate:
    """A progress update for image generation (same fields as :class:`VideoGenerationUpdate`)."""

    request_id: str
    status: StatusType = attrs.field(validator=_status_validator)
    progress_percent: float | None = attrs.field(default=None, validator=_percent)
    update: AnyDict = attrs.field(factory=dict, converter=_redacted_dict)
    result: ImageGenerationResponse | None = None
    error: str | None = attrs.field(default=None, converter=_scrubbed)
    queue_position: int | None = None
    logs: tuple[str, ...] = attrs.field(default=(), converter=_scrubbed_lines)
    attempt: int = 1
    provider: str | None = None
    model: str | None = None
    elapsed_seconds: float | None = None

    __str__ = _update_str
