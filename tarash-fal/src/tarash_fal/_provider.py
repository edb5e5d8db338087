"""The fal lifecycle: submit, status, result and cancel through fal-client's queue API.

Each hook has a sync variant (``fal_client.SyncClient``) and an async one
(``fal_client.AsyncClient``), sharing everything but the I/O. Imported on the first fal call only,
so ``import tarash_fal._plugin`` never imports fal-client.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
import fal_client
import httpx

from tarash.tarash_gateway import get_provider_field_mapping
from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    TarashException,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationResponse,
    MediaContent,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import CallContext, JobRef, JobStatus, Modality, SubmittedJob
from tarash.tarash_gateway.utils import get_logger, parse_retry_after, register_secret

from ._clients import DEFAULT_MAX_RESPONSE_BYTES, POOLS, Exchange, Target, exchange
from ._errors import error_from_response, response_body, unreadable_answer
from ._registry import build_payload

log = get_logger("tarash.fal")

PROVIDER = "fal"
PROVIDER_CONFIG_KEYS = ("webhook_url", "ca_bundle", "max_response_bytes")
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._~-]*"
_MODEL_ID = re.compile(rf"^(?:{_SEGMENT}(?:/{_SEGMENT})+|[0-9]+-[A-Za-z0-9-]+)$")
_NAMESPACES = ("workflows", "comfy")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Exceptions fal-client raises while reading a 2xx answer it cannot use.
_UNUSABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError)


@attrs.frozen
class Settings:
    """What a config means for fal: who to call, and the per-call options."""

    target: Target
    webhook_url: str | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


# ----------------------------------------------------------------------------------------------
# Validation (before anything is sent)
# ----------------------------------------------------------------------------------------------


def _api_key(config: Any) -> str:
    if config.api_key:
        return str(config.api_key)
    key = os.environ.get("FAL_KEY", "").strip()
    if not key:
        key_id = os.environ.get("FAL_KEY_ID", "").strip()
        secret = os.environ.get("FAL_KEY_SECRET", "").strip()
        key = f"{key_id}:{secret}" if key_id and secret else ""
    if not key:
        raise ValidationError(
            "fal needs an API key: set config.api_key or the FAL_KEY environment variable",
            field="api_key",
            provider=PROVIDER,
            model=config.model,
        )
    register_secret(key)
    return key


def _check_model(model: str) -> None:
    parts = model.split("/")
    if not _MODEL_ID.match(model) or (parts[0] in _NAMESPACES and len(parts) < 3):
        raise ValidationError(
            f"{model!r} is not a fal model id: expected owner/alias[/path], e.g. 'fal-ai/veo3'",
            field="model",
            value=model,
            provider=PROVIDER,
            model=model,
        )


def _url(value: Any, field: str, *, query: bool) -> str:
    if isinstance(value, str):
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL:
            url = None
        if url is not None and url.scheme in ("http", "https") and url.host and (query or not url.query):
            return value
    shape = "an http(s) URL" if query else "an http(s) URL without a query string"
    raise ValidationError(
        f"{field} must be {shape}, got {value!r}", field=field, value=value, provider=PROVIDER
    )


def settings(config: Any) -> Settings:
    """Validate the config for fal; raise ValidationError before any request otherwise."""
    _check_model(config.model)
    options = config.provider_config
    unknown = sorted(set(options) - set(PROVIDER_CONFIG_KEYS))
    if unknown:
        raise ValidationError(
            f"Unknown fal provider_config keys: {', '.join(unknown)}",
            field=f"provider_config.{unknown[0]}",
            value=unknown,
            allowed=PROVIDER_CONFIG_KEYS,
            provider=PROVIDER,
            model=config.model,
        )
    base_url = _url(config.base_url, "base_url", query=False) if config.base_url is not None else None
    webhook = options.get("webhook_url")
    if webhook is not None:
        webhook = _url(webhook, "provider_config.webhook_url", query=True)
    ca_bundle = options.get("ca_bundle")
    if ca_bundle is not None and not (isinstance(ca_bundle, str) and os.path.isfile(ca_bundle)):
        raise ValidationError(
            f"provider_config.ca_bundle must be a PEM file path, got {ca_bundle!r}",
            field="provider_config.ca_bundle",
            value=ca_bundle,
            provider=PROVIDER,
        )
    max_bytes = options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise ValidationError(
            f"provider_config.max_response_bytes must be an integer >= 1024, got {max_bytes!r}",
            field="provider_config.max_response_bytes",
            value=max_bytes,
            provider=PROVIDER,
        )
    target = Target(api_key=_api_key(config), base_url=base_url, ca_bundle=ca_bundle)
    return Settings(target=target, webhook_url=webhook, max_bytes=max_bytes)


def _jsonable(value: Any, path: str) -> Any:
    """``value`` as JSON: MediaContent becomes a data URI; anything else unsendable is refused."""
    if isinstance(value, MediaContent):
        return value.to_data_uri()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"{path} must be a finite number, got {value!r}",
            field=path,
            value=value,
            provider=PROVIDER,
        )
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ValidationError(
        f"{path} cannot be sent to fal: {type(value).__name__} is not JSON (use a URL, "
        "MediaContent or plain JSON values)",
        field=path,
        value=type(value).__name__,
        provider=PROVIDER,
    )


def payload(config: Any, request: Any, modality: Modality) -> dict[str, Any]:
    """The exact JSON body to submit."""
    mappings = get_provider_field_mapping(PROVIDER) or {}
    body = build_payload(config.model, request, modality, mappings)
    return {str(k): _jsonable(v, str(k)) for k, v in body.items()}


# ----------------------------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------------------------


def _fal_error(exc: fal_client.FalClientHTTPError, kind: str, request_id: str | None) -> TarashException:
    return error_from_response(exc.response, kind=kind, request_id=request_id)


def _submitted(handle: Any, record: Exchange) -> SubmittedJob:
    request_id = handle.request_id
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise unreadable_answer(
            kind="submit", reason=f"request_id {request_id!r} is not an id", raw=_raw(record)
        )
    log.debug("fal accepted job %s", request_id)
    return SubmittedJob(job_id=request_id)


def _raw(record: Exchange) -> Any:
    return response_body(record.response) if record.response is not None else None


def _unusable(exc: Exception, kind: str, record: Exchange, request_id: str | None = None) -> TarashException:
    return unreadable_answer(
        kind=kind, reason=f"{type(exc).__name__}: {exc}", raw=_raw(record), request_id=request_id
    )


def _log_lines(logs: Any) -> tuple[str, ...]:
    if not isinstance(logs, list):
        return ()
    lines = []
    for entry in logs:
        text = entry.get("message") if isinstance(entry, Mapping) else entry
        if isinstance(text, str) and text:
            lines.append(text)
    return tuple(lines)


def job_status(state: Any, record: Exchange, job: JobRef) -> JobStatus:
    """A JobStatus from fal-client's parsed status and the raw answer."""
    raw = _raw(record)
    raw = raw if isinstance(raw, dict) else {}
    headers = record.response.headers if record.response is not None else {}
    hint = parse_retry_after(headers.get("retry-after"))
    if isinstance(state, fal_client.Queued):
        position = state.position
        valid = isinstance(position, int) and not isinstance(position, bool) and position >= 0
        return JobStatus(state="queued", queue_position=position if valid else None, poll_after=hint, raw=raw)
    if isinstance(state, fal_client.InProgress):
        return JobStatus(state="processing", logs=_log_lines(state.logs), poll_after=hint, raw=raw)
    if isinstance(state, fal_client.Completed):
        logs = _log_lines(state.logs)
        if state.error or state.error_type:
            kind = f" [{state.error_type}]" if state.error_type else ""
            error = GenerationFailedError(
                f"fal job {job.job_id} failed{kind}: {state.error or 'no detail given'}",
                raw_response=raw,
                request_id=job.job_id,
                phase="poll",
            )
            return JobStatus(state="failed", logs=logs, error=error, raw=raw)
        return JobStatus(state="completed", logs=logs, raw=raw)
    raise unreadable_answer(
        kind="status", reason=f"unexpected status {state!r}", raw=raw, request_id=job.job_id
    )


def _url_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("url")
    return value if isinstance(value, str) and value.strip() else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def video_response(job: JobRef, body: Any) -> VideoGenerationResponse:
    """The response for a finished video job (GenerationFailedError when there is no video)."""
    if not isinstance(body, dict):
        raise unreadable_answer(
            kind="result", reason="the result is not a JSON object", raw=body, request_id=job.job_id
        )
    video = body.get("video")
    url = _url_of(video) or _url_of(body.get("video_url"))
    if url is None:
        raise GenerationFailedError(
            f"fal job {job.job_id} finished without a video URL",
            raw_response=body,
            request_id=job.job_id,
            phase="result",
        )
    details = video if isinstance(video, Mapping) else {}
    width, height = details.get("width"), details.get("height")
    try:
        return VideoGenerationResponse(
            request_id=job.job_id,
            video=url,
            content_type=_text(details.get("content_type")),
            audio_url=_url_of(body.get("audio")) or _url_of(body.get("audio_url")),
            duration=_number(details.get("duration")),
            resolution=f"{width}x{height}" if _number(width) and _number(height) else None,
            raw_response=body,
            provider=PROVIDER,
            model=job.model,
        )
    except ValidationError as exc:
        raise unreadable_answer(kind="result", reason=exc.message, raw=body, request_id=job.job_id) from None


def image_response(job: JobRef, body: Any) -> ImageGenerationResponse:
    """The response for a finished image job (GenerationFailedError when there are no images)."""
    if not isinstance(body, dict):
        raise unreadable_answer(
            kind="result", reason="the result is not a JSON object", raw=body, request_id=job.job_id
        )
    images = body.get("images")
    if images is None and body.get("image") is not None:
        images = [body["image"]]
    urls = [_url_of(image) for image in images] if isinstance(images, list) else []
    if not urls or None in urls:
        raise GenerationFailedError(
            f"fal job {job.job_id} finished without image URLs",
            raw_response=body,
            request_id=job.job_id,
            phase="result",
        )
    first = images[0] if isinstance(images, list) and isinstance(images[0], Mapping) else {}
    return ImageGenerationResponse(
        request_id=job.job_id,
        images=[u for u in urls if u is not None],
        content_type=_text(first.get("content_type")) or "image/png",
        revised_prompt=_text(body.get("revised_prompt")),
        raw_response=body,
        provider=PROVIDER,
        model=job.model,
    )


def _result(job: JobRef, response: httpx.Response, record: Exchange) -> Any:
    if response.status_code >= 400:
        raise error_from_response(response, kind="result", request_id=job.job_id)
    try:
        body = response.json()
    except ValueError as exc:
        raise _unusable(exc, "result", record, job.job_id) from None
    return video_response(job, body) if job.modality == "video" else image_response(job, body)


def _already_finished(response: httpx.Response) -> bool:
    body = response_body(response)
    return (
        response.status_code == 400 and isinstance(body, dict) and body.get("status") == "ALREADY_COMPLETED"
    )


# ----------------------------------------------------------------------------------------------
# Sync hooks
# ----------------------------------------------------------------------------------------------


def submit(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    """Submit the job through ``fal_client.SyncClient.submit``."""
    opts = settings(config)
    body = payload(config, request, context.modality)
    client = POOLS.sync_client(opts.target)
    with exchange("submit", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            handle = client.submit(config.model, arguments=body, webhook_url=opts.webhook_url)
        except fal_client.FalClientHTTPError as exc:
            raise _fal_error(exc, "submit", None) from None
        except (httpx.HTTPError, *_UNUSABLE) as exc:
            if record.response is None:
                raise
            raise _unusable(exc, "submit", record) from None
    return _submitted(handle, record)


def status(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    """One status request (with logs) through fal-client's request handle."""
    opts = settings(config)
    client = POOLS.sync_client(opts.target)
    with exchange("status", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            state = client.status(job.model, job.job_id, with_logs=True)
        except fal_client.FalClientHTTPError as exc:
            raise _fal_error(exc, "status", job.job_id) from None
        except (httpx.HTTPError, *_UNUSABLE) as exc:
            raise _unusable(exc, "status", record, job.job_id) from None
    return job_status(state, record, job)


def result(config: Any, job: JobRef, context: CallContext) -> Any:
    """Fetch the output of a completed job (one GET of fal-client's response URL)."""
    opts = settings(config)
    handle = POOLS.sync_client(opts.target).get_handle(job.model, job.job_id)
    with exchange("result", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            response = handle.client.get(handle.response_url)
        except httpx.HTTPError as exc:
            raise _unusable(exc, "result", record, job.job_id) from None
        return _result(job, response, record)


def cancel(config: Any, job: JobRef, context: CallContext) -> bool:
    """Cancel through fal-client; False when the job had already finished."""
    opts = settings(config)
    client = POOLS.sync_client(opts.target)
    with exchange("cancel", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout):
        try:
            client.cancel(job.model, job.job_id)
        except fal_client.FalClientHTTPError as exc:
            if _already_finished(exc.response):
                return False
            raise _fal_error(exc, "cancel", job.job_id) from None
    log.debug("fal cancel accepted for job %s", job.job_id)
    return True


# ----------------------------------------------------------------------------------------------
# Async hooks
# ----------------------------------------------------------------------------------------------


async def submit_async(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    """Async :func:`submit` through ``fal_client.AsyncClient.submit``."""
    opts = settings(config)
    body = payload(config, request, context.modality)
    client = await POOLS.async_client(opts.target)
    with exchange("submit", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            handle = await client.submit(config.model, arguments=body, webhook_url=opts.webhook_url)
        except fal_client.FalClientHTTPError as exc:
            raise _fal_error(exc, "submit", None) from None
        except (httpx.HTTPError, *_UNUSABLE) as exc:
            if record.response is None:
                raise
            raise _unusable(exc, "submit", record) from None
    return _submitted(handle, record)


async def status_async(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    """Async :func:`status`."""
    opts = settings(config)
    client = await POOLS.async_client(opts.target)
    with exchange("status", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            state = await client.status(job.model, job.job_id, with_logs=True)
        except fal_client.FalClientHTTPError as exc:
            raise _fal_error(exc, "status", job.job_id) from None
        except (httpx.HTTPError, *_UNUSABLE) as exc:
            raise _unusable(exc, "status", record, job.job_id) from None
    return job_status(state, record, job)


async def result_async(config: Any, job: JobRef, context: CallContext) -> Any:
    """Async :func:`result`."""
    opts = settings(config)
    handle = await (await POOLS.async_client(opts.target)).get_handle(job.model, job.job_id)
    with exchange("result", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout) as record:
        try:
            response = await handle.client.get(handle.response_url)
        except httpx.HTTPError as exc:
            raise _unusable(exc, "result", record, job.job_id) from None
        return _result(job, response, record)


async def cancel_async(config: Any, job: JobRef, context: CallContext) -> bool:
    """Async :func:`cancel`."""
    opts = settings(config)
    client = await POOLS.async_client(opts.target)
    with exchange("cancel", context.timeout, max_bytes=opts.max_bytes, timeout=config.timeout):
        try:
            await client.cancel(job.model, job.job_id)
        except fal_client.FalClientHTTPError as exc:
            if _already_finished(exc.response):
                return False
            raise _fal_error(exc, "cancel", job.job_id) from None
    log.debug("fal cancel accepted for job %s", job.job_id)
    return True
