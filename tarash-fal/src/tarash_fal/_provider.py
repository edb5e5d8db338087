"""The fal queue API as flows: what to send for submit, status, result and cancel, and how to read
fal's answers. Core sends every request (``tarash.tarash_gateway.hookspecs``); nothing here does I/O.

The queue API (fal's docs; fal-client 1.0.3 ``client.py``): ``POST /{model}`` submits (with
``?fal_webhook=`` for a webhook); ``GET /{owner}/{alias}/requests/{id}/status?logs=1`` observes;
``GET /{owner}/{alias}/requests/{id}`` reads the result; ``PUT .../cancel`` cancels. A submit
with ``config.output_lifetime`` sends ``X-Fal-Object-Lifecycle-Preference``; responses carry
``expires_at`` (that lifetime, else fal's 7-day minimum, from the submit). Status,
result and cancel live under the app's owner/alias only, never the model's sub-path. The key goes
in ``Authorization: Key <FAL_KEY>`` (``ProviderSpec.auth_scheme``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from tarash.tarash_gateway import get_provider_field_mapping
from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationResponse,
    MediaContent,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import JobStatus, Request, SubmittedJob
from tarash.tarash_gateway.utils import get_logger, parse_retry_after

from ._errors import error_from_response, unreadable_answer
from ._registry import build_payload, in_a_table

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, Flow, JobRef, Modality, Response

    from ._uploads import UploadOptions

log = get_logger("tarash.fal")

PROVIDER = "fal"
PROVIDER_CONFIG_KEYS = (
    "webhook_url",
    "ca_bundle",
    "max_response_bytes",
    "upload_lifecycle",
    "inline_max_bytes",
    "storage_url",
    "schema_url",
    "platform_url",
)
#: The provider_config keys that say how local inputs are uploaded (``_uploads``).
_UPLOAD_KEYS = ("inline_max_bytes", "storage_url", "upload_lifecycle")
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._~-]*"
_MODEL_ID = re.compile(rf"^(?:{_SEGMENT}(?:/{_SEGMENT})+|[0-9]+-[A-Za-z0-9-]+)$")
_NAMESPACES = ("workflows", "comfy")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "processing", "COMPLETED": "completed"}
#: Sets a job's output lifetime (https://docs.fal.ai/documentation/model-apis/media-expiration).
LIFECYCLE_HEADER = "X-Fal-Object-Lifecycle-Preference"
#: Seconds fal keeps outputs when no lifetime is asked for: "at least 7 days" (fal's FAQ).
DEFAULT_OUTPUT_LIFETIME = 7 * 86400


# ----------------------------------------------------------------------------------------------
# Validation (before anything is sent)
# ----------------------------------------------------------------------------------------------


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


def _url(value: Any, field: str) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return value
    raise ValidationError(
        f"{field} must be an http(s) URL, got {value!r}", field=field, value=value, provider=PROVIDER
    )


def webhook_url(config: Any, context: CallContext) -> str | None:
    """Validate the config for fal (model id, provider_config keys, the platform, schema and
    webhook URLs) before anything is sent; the webhook URL to submit with, if any."""
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
    for key in ("platform_url", "schema_url"):
        if key in options:
            _url(options[key], f"provider_config.{key}")
    if context.webhook_url is None:
        return None
    return _url(context.webhook_url, "provider_config.webhook_url")


def lifecycle_headers(config: Any) -> dict[str, str]:
    """``X-Fal-Object-Lifecycle-Preference`` when ``config.output_lifetime`` asks for one: fal
    then keeps the job's output files that many seconds."""
    lifetime = config.output_lifetime
    if lifetime is None:
        return {}
    return {LIFECYCLE_HEADER: json.dumps({"expiration_duration_seconds": math.ceil(lifetime)})}


def outputs_expire_at(config: Any, job: JobRef) -> datetime:
    """When fal may delete the job's outputs: the lifetime asked for, else fal's guaranteed
    minimum (:data:`DEFAULT_OUTPUT_LIFETIME`), counted from the submit (the earliest they can
    have been made)."""
    lifetime = config.output_lifetime
    seconds = DEFAULT_OUTPUT_LIFETIME if lifetime is None else math.ceil(lifetime)
    return job.submitted_at + timedelta(seconds=seconds)


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


def payload(
    config: Any, request: Any, modality: Modality, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The exact JSON body to submit (``extra``: prefix -> mapping, e.g. a runtime schema's)."""
    mappings = {**(get_provider_field_mapping(PROVIDER) or {}), **(extra or {})}
    body = build_payload(config.model, request, modality, mappings)
    return {str(k): _jsonable(v, str(k)) for k, v in body.items()}


def _upload_options(provider_config: Mapping[str, Any]) -> UploadOptions:
    # lazy: the upload code loads only for a call that sets upload options or has a local input
    from ._uploads import upload_options

    return upload_options(provider_config)


def _has_data_uri(value: Any) -> bool:
    """Whether the payload holds a ``data:`` URI (a local input, which may need uploading)."""
    if isinstance(value, str):
        return value[:5].lower() == "data:"
    if isinstance(value, Mapping):
        return any(_has_data_uri(entry) for entry in value.values())
    if isinstance(value, list):
        return any(_has_data_uri(entry) for entry in value)
    return False


def _payload_from_schema(config: Any, request: Any, modality: Modality) -> Flow[dict[str, Any]]:
    """The payload; for a model in no table, mapped and checked with its published schema
    (read from ``provider_config["schema_url"]`` or fal's through core's transport; the generic
    mapping when it cannot be had)."""
    if in_a_table(config.model, modality, get_provider_field_mapping(PROVIDER) or {}):
        return payload(config, request, modality)
    # lazy: only a model in no table needs its schema (a plain generation never loads the module)
    from ._runtime_schema import check_payload, runtime_schema, schema_url

    schema = yield from runtime_schema(config.model, schema_url(config.provider_config))
    if schema is None:
        return payload(config, request, modality)
    if schema.spec["modality"] != modality:
        log.warning(
            "fal's schema files %s under %r; generating %s with the generic mapping",
            config.model,
            schema.spec["category"],
            modality,
        )
        body = payload(config, request, modality)
    else:
        body = payload(config, request, modality, {config.model: schema.mapping})
    check_payload(config.model, schema, body)
    return body


# ----------------------------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------------------------


def _json(response: Response, kind: str, request_id: str | None = None) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise unreadable_answer(
            kind=kind, reason=f"{type(exc).__name__}: {exc}", raw=response.text[:500], request_id=request_id
        ) from None


def _app(model: str) -> str:
    """The owner/alias part of a model id: status, result and cancel URLs live there."""
    parts = model.split("/")
    keep = 3 if parts[0] in _NAMESPACES else 2
    return "/".join(parts[:keep])


def _job_url(job: JobRef, tail: str = "") -> str:
    return f"/{_app(job.model)}/requests/{quote(job.job_id, safe='')}{tail}"


def _log_lines(logs: Any) -> tuple[str, ...]:
    if not isinstance(logs, list):
        return ()
    lines = []
    for entry in logs:
        text = entry.get("message") if isinstance(entry, Mapping) else entry
        if isinstance(text, str) and text:
            lines.append(text)
    return tuple(lines)


def job_status(body: Any, response: Response, job: JobRef) -> JobStatus:
    """A JobStatus from fal's status answer."""
    if not isinstance(body, dict):
        raise unreadable_answer(
            kind="status", reason="the status is not a JSON object", raw=body, request_id=job.job_id
        )
    hint = parse_retry_after(response.header("retry-after"))
    state = _STATES.get(body.get("status"))  # type: ignore[arg-type]
    logs = _log_lines(body.get("logs"))
    if state == "queued":
        position = body.get("queue_position")
        valid = isinstance(position, int) and not isinstance(position, bool) and position >= 0
        return JobStatus(
            state="queued", queue_position=position if valid else None, poll_after=hint, raw=body
        )
    if state == "processing":
        return JobStatus(state="processing", logs=logs, poll_after=hint, raw=body)
    if state == "completed":
        if body.get("error") or body.get("error_type"):
            kind = f" [{body['error_type']}]" if body.get("error_type") else ""
            error = GenerationFailedError(
                f"fal job {job.job_id} failed{kind}: {body.get('error') or 'no detail given'}",
                raw_response=body,
                request_id=job.job_id,
                phase="poll",
            )
            return JobStatus(state="failed", logs=logs, error=error, raw=body)
        return JobStatus(state="completed", logs=logs, raw=body)
    raise unreadable_answer(
        kind="status", reason=f"unexpected status {body.get('status')!r}", raw=body, request_id=job.job_id
    )


def _url_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("url")
    return value if isinstance(value, str) and value.strip() else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def video_response(job: JobRef, body: Any, expires_at: Any = None) -> VideoGenerationResponse:
    """The response for a finished video job (GenerationFailedError when there is no video);
    ``expires_at``: when fal deletes its outputs."""
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
            expires_at=expires_at,
        )
    except ValidationError as exc:
        raise unreadable_answer(kind="result", reason=exc.message, raw=body, request_id=job.job_id) from None


def image_response(job: JobRef, body: Any, expires_at: Any = None) -> ImageGenerationResponse:
    """The response for a finished image job (GenerationFailedError when there are no images);
    ``expires_at``: when fal deletes its outputs."""
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
        expires_at=expires_at,
    )


# ----------------------------------------------------------------------------------------------
# Flows
# ----------------------------------------------------------------------------------------------


def _translated(exc: HTTPError, kind: str, request_id: str | None = None) -> Exception:
    """fal's error body as a typed error where it says more than the status (422 field errors,
    content policy); core's HTTPError otherwise."""
    translated = error_from_response(exc, kind=kind, request_id=request_id)
    return translated if translated is not None else exc


def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    """``POST /{model}`` with the mapped payload (validated before anything is sent); for a model
    in no table its schema is read first, and large local inputs are uploaded first."""
    webhook = webhook_url(config, context)
    options = config.provider_config
    uploads = _upload_options(options) if any(key in options for key in _UPLOAD_KEYS) else None
    body = yield from _payload_from_schema(config, request, context.modality)
    if uploads is not None or _has_data_uri(body):
        from ._uploads import upload_inputs  # lazy: as in _upload_options

        body = yield from upload_inputs(body, uploads if uploads is not None else _upload_options(options))
    params = {"fal_webhook": webhook} if webhook else {}
    headers = lifecycle_headers(config)
    try:
        response = yield Request(
            method="POST", url=f"/{config.model}", json=body, params=params, headers=headers
        )
    except HTTPError as exc:
        raise _translated(exc, "submit") from None
    answer = _json(response, "submit")
    request_id = answer.get("request_id") if isinstance(answer, dict) else None
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise unreadable_answer(kind="submit", reason=f"request_id {request_id!r} is not an id", raw=answer)
    log.debug("fal accepted job %s", request_id)
    return SubmittedJob(job_id=request_id)


def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    """One status request, with logs."""
    try:
        response = yield Request(method="GET", url=_job_url(job, "/status"), params={"logs": "1"})
    except HTTPError as exc:
        raise _translated(exc, "status", job.job_id) from None
    return job_status(_json(response, "status", job.job_id), response, job)


def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    """The output of a completed job."""
    try:
        response = yield Request(method="GET", url=_job_url(job))
    except HTTPError as exc:
        raise _translated(exc, "result", job.job_id) from None
    body = _json(response, "result", job.job_id)
    expires_at = outputs_expire_at(config, job)
    if job.modality == "video":
        return video_response(job, body, expires_at)
    return image_response(job, body, expires_at)


def cancel(config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    """Cancel a job; False when it had already finished."""
    try:
        yield Request(method="PUT", url=_job_url(job, "/cancel"))
    except HTTPError as exc:
        body = exc.raw_response
        if exc.status_code == 400 and isinstance(body, dict) and body.get("status") == "ALREADY_COMPLETED":
            return False
        raise _translated(exc, "cancel", job.job_id) from None
    log.debug("fal cancel accepted for job %s", job.job_id)
    return True
