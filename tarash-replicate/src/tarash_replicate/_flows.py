"""The Replicate lifecycle as flows of requests: create, get, cancel a prediction.

* create: ``POST /v1/models/{owner}/{name}/predictions`` (official models, by name) or
  ``POST /v1/predictions`` with ``version`` (any version); ``Prefer: wait=N`` for fast models, so
  the answer may already hold the output (then status and result send nothing);
* get: ``GET /v1/predictions/{id}``: ``starting`` / ``processing`` / ``succeeded`` / ``failed`` /
  ``canceled``; progress is read from the logs where the model prints a progress bar;
* cancel: ``POST /v1/predictions/{id}/cancel``: the prediction comes back, still running
  (accepted), ``canceled``, or already finished.

Imported on the first Replicate call only (never by discovery).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    JobCancelledError,
    ValidationError,
)
from tarash.tarash_gateway.field_mappers import passthrough_field_mapper
from tarash.tarash_gateway.models import ImageGenerationResponse, VideoGenerationResponse
from tarash.tarash_gateway.plugin import CallContext, Flow, JobRef, JobStatus, Request, SubmittedJob
from tarash.tarash_gateway.utils import get_logger

from . import _errors, _inputs
from ._families import family_for
from ._outputs import expires_at, output_urls
from ._payload import ModelRef, build_input, check_against_schema, input_schema, parse_model, schema_mapping
from ._spec import PROVIDER

__all__ = ["cancel", "job_status", "progress_from_logs", "result", "submit", "submitted_job"]

log = get_logger("tarash.replicate")

PROVIDER_CONFIG_KEYS = ("wait", "webhook_url", "webhook_events_filter", "schema")
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
MAX_WAIT = 60
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PROGRESS = re.compile(r"^\s*(\d{1,3})%\s*\|.*?\|\s*(\d+)/(\d+)")
_STATES = {
    "starting": "queued",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
}
_TERMINAL = ("succeeded", "failed", "canceled")
#: A terminal prediction from a ``Prefer: wait`` answer is kept in the job's data (so status and
#: result need no request) when it is at most this large as JSON.
_INLINE_PREDICTION = 64 * 1024
#: A model in no table and without a schema: the prompt, and ``extra_params`` as the model's inputs.
GENERIC_MAPPING = {"prompt": passthrough_field_mapper("prompt")}
_SCHEMAS: OrderedDict[tuple[str, str], dict[str, Any] | None] = OrderedDict()
_SCHEMA_CACHE_SIZE = 256


# ----------------------------------------------------------------------------------------------
# Settings (validated before anything is sent)
# ----------------------------------------------------------------------------------------------


def _refuse(message: str, field: str, value: Any, allowed: Any = None) -> ValidationError:
    return ValidationError(message, field=field, value=value, allowed=allowed, provider=PROVIDER)


def _webhook_url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    host = parts.hostname if parts is not None else None
    if parts is not None and host and parts.scheme == "https":
        return str(value)
    if parts is not None and host and parts.scheme == "http" and _loopback(host):
        return str(value)
    raise _refuse(
        f"webhook_url must be an https URL (http only for a local receiver), got {value!r}",
        "provider_config.webhook_url",
        value,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings(config: Any, context: CallContext, wait_default: bool) -> dict[str, Any]:
    options = config.provider_config
    unknown = sorted(set(options) - set(PROVIDER_CONFIG_KEYS))
    if unknown:
        raise _refuse(
            f"Unknown Replicate provider_config keys: {', '.join(unknown)}",
            f"provider_config.{unknown[0]}",
            unknown,
            PROVIDER_CONFIG_KEYS,
        )
    wait = options.get("wait", wait_default)
    if wait is True:
        wait = MAX_WAIT
    if wait is not False and (
        isinstance(wait, bool) or not isinstance(wait, int) or not 1 <= wait <= MAX_WAIT
    ):
        raise _refuse(
            f"provider_config.wait must be True, False or seconds from 1 to {MAX_WAIT}, got {wait!r}",
            "provider_config.wait",
            wait,
        )
    if wait is not False:
        wait = max(1, min(wait, int(context.timeout) - 1))
    webhook = context.webhook_url or options.get("webhook_url")
    events = options.get("webhook_events_filter", ["completed"])
    if not isinstance(events, (list, tuple)) or not events or any(e not in WEBHOOK_EVENTS for e in events):
        raise _refuse(
            f"provider_config.webhook_events_filter must be a non-empty list of {WEBHOOK_EVENTS}, "
            f"got {events!r}",
            "provider_config.webhook_events_filter",
            events,
            WEBHOOK_EVENTS,
        )
    schema = options.get("schema", True)
    if not isinstance(schema, bool):
        raise _refuse(
            f"provider_config.schema must be a bool, got {schema!r}", "provider_config.schema", schema
        )
    return {
        "wait": wait,
        "webhook": None if webhook is None else _webhook_url(webhook),
        "events": list(events),
        "schema": schema,
    }


# ----------------------------------------------------------------------------------------------
# Submit
# ----------------------------------------------------------------------------------------------


def _schema(ref: ModelRef, context: CallContext) -> Flow[dict[str, Any] | None]:
    """The model's ``Input`` schema from ``GET /v1/models/{owner}/{name}``, cached per process."""
    key = (context.base_url, str(ref.slug))
    if key in _SCHEMAS:
        _SCHEMAS.move_to_end(key)
        return _SCHEMAS[key]
    try:
        answer = yield Request(method="GET", url=f"/v1/models/{ref.slug}")
        body = answer.json()
    except (HTTPError, HTTPConnectionError, ValueError) as exc:
        log.warning("no schema for Replicate model %s (%s); sending extra_params as given", ref.slug, exc)
        return None
    latest = body.get("latest_version") if isinstance(body, Mapping) else None
    schema = input_schema(latest.get("openapi_schema")) if isinstance(latest, Mapping) else None
    _SCHEMAS[key] = schema
    while len(_SCHEMAS) > _SCHEMA_CACHE_SIZE:
        _SCHEMAS.popitem(last=False)
    return schema


def _body(ref: ModelRef, payload: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if ref.version is not None:
        body["version"] = ref.version
    body["input"] = payload
    if settings["webhook"] is not None:
        body["webhook"] = settings["webhook"]
        body["webhook_events_filter"] = settings["events"]
    return body


def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    """Validate, upload large local media, then create the prediction."""
    ref = parse_model(config.model)
    family = family_for(ref.slug) if ref.slug is not None else None
    if family is not None and family.modality != context.modality:
        raise ValidationError(
            f"{ref.slug} is a {family.modality} model; it cannot generate {context.modality}",
            field="model",
            value=config.model,
            provider=PROVIDER,
            model=config.model,
        )
    settings = _settings(config, context, wait_default=family is not None and family.wait)
    media = _inputs.local_media(request)
    stand_ins = [
        (item.media, item.media.to_data_uri() if item.inline else _inputs.placeholder(i))
        for i, item in enumerate(media)
    ]
    schema = None
    if family is not None:
        mapping, roles, required = family.mapping(), family.roles, family.required_roles
    else:
        if ref.version is None and settings["schema"]:
            schema = yield from _schema(ref, context)
        mapping, roles = schema_mapping(schema) if schema is not None else (GENERIC_MAPPING, ())
        required = ()
    sources = {api: mapper.source_field for api, mapper in mapping.items()}

    def build(resolved: Any) -> dict[str, Any]:
        payload = build_input(
            mapping, resolved, context.modality, config.model, required_roles=required, accepted_roles=roles
        )
        if schema is not None:
            check_against_schema(payload, schema, config.model)
        return payload

    payload = build(_inputs.substitute(request, stand_ins))
    uploads = [item for item in media if not item.inline]
    if uploads:
        urls = {}
        for item in uploads:
            urls[id(item.media)] = yield from _inputs.upload(item)
        resolved = [(m, urls.get(id(m), url)) for m, url in stand_ins]
        payload = build(_inputs.substitute(request, resolved))
    headers = {"Prefer": f"wait={settings['wait']}"} if settings["wait"] is not False else {}
    try:
        answer = yield Request(
            method="POST", url=ref.create_path, json=_body(ref, payload, settings), headers=headers
        )
    except HTTPError as exc:
        typed = _errors.create_error(exc, model=config.model, sources=sources)
        if typed is None:
            raise
        raise typed from None
    return submitted_job(answer.json(), config.model)


def submitted_job(prediction: Any, model: str, *, inline: bool = True) -> SubmittedJob:
    """The job of a prediction Replicate answered with; a finished one is kept in its data
    (``inline``), so status and result send nothing."""
    if not isinstance(prediction, Mapping) or not _ID.match(str(prediction.get("id", ""))):
        raise GenerationFailedError(
            "Replicate accepted the prediction but its answer has no usable id",
            provider=PROVIDER,
            model=model,
            raw_response=prediction,
            phase="submit",
            retryable=False,
        )
    job_id = str(prediction["id"])
    data: dict[str, Any] = {"created_at": prediction.get("created_at")}
    if inline and prediction.get("status") in _TERMINAL and len(json.dumps(prediction)) <= _INLINE_PREDICTION:
        data["prediction"] = dict(prediction)
    log.debug("Replicate created prediction %s (%s)", job_id, prediction.get("status"))
    return SubmittedJob(job_id=job_id, data=data)


# ----------------------------------------------------------------------------------------------
# Status, result, cancel
# ----------------------------------------------------------------------------------------------


def progress_from_logs(logs: Any) -> float | None:
    """The last progress bar's percentage in the logs (``" 45%|####      | 9/20 [...]"``)."""
    if not isinstance(logs, str):
        return None
    for line in reversed(logs.splitlines()):
        match = _PROGRESS.match(line)
        if match and int(match.group(3)) > 0:
            return min(100.0, float(int(match.group(1))))
    return None


def job_status(prediction: Any, job: JobRef) -> JobStatus:
    """One observation of a prediction."""
    if not isinstance(prediction, Mapping):
        raise GenerationFailedError(
            f"Replicate answered prediction {job.job_id}'s status with a non-object",
            provider=PROVIDER,
            model=job.model,
            request_id=job.job_id,
            phase="poll",
        )
    # The input is left out: it may hold inline data URIs, and every update would carry it.
    raw = {key: value for key, value in prediction.items() if key != "input"}
    status = prediction.get("status")
    state = _STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise GenerationFailedError(
            f"Replicate answered an unknown status {status!r} for prediction {job.job_id}",
            provider=PROVIDER,
            model=job.model,
            request_id=job.job_id,
            raw_response=raw,
            phase="poll",
        )
    logs = prediction.get("logs")
    lines = tuple(line for line in logs.splitlines() if line.strip()) if isinstance(logs, str) else ()
    error = _errors.failure(prediction, job.job_id, job.model, "poll") if state == "failed" else None
    percent = 100.0 if state == "completed" else progress_from_logs(logs)
    return JobStatus(state=state, progress_percent=percent, logs=lines, error=error, raw=raw)  # type: ignore[arg-type]


def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    """``GET /v1/predictions/{id}`` (nothing when the create answer was already final)."""
    known = job.data.get("prediction")
    if isinstance(known, Mapping):
        return job_status(known, job)
    answer = yield Request(method="GET", url=f"/v1/predictions/{job.job_id}")
    return job_status(answer.json(), job)


_TYPES = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


def _content_type(url: str) -> str | None:
    return _TYPES.get(urlsplit(url).path.rsplit(".", 1)[-1].lower()) if "." in urlsplit(url).path else None


def _response(prediction: Mapping[str, Any], job: JobRef) -> Any:
    status = prediction.get("status")
    if status == "failed":
        raise _errors.failure(prediction, job.job_id, job.model, "result")
    if status == "canceled":
        raise JobCancelledError(
            f"Replicate prediction {job.job_id} was canceled",
            provider=PROVIDER,
            model=job.model,
            request_id=job.job_id,
            phase="result",
        )
    urls = output_urls(prediction.get("output"))
    if status != "succeeded" or not urls:
        removed = prediction.get("data_removed") is True
        reason = (
            "its output was deleted (Replicate keeps API predictions' outputs for one hour)"
            if removed
            else f"it has no output URL (status {status!r})"
        )
        raise GenerationFailedError(
            f"Replicate prediction {job.job_id} finished but {reason}",
            provider=PROVIDER,
            model=job.model,
            request_id=job.job_id,
            raw_response=dict(prediction),
            phase="result",
            retryable=not removed,
        )
    raw = dict(prediction)
    if job.modality == "video":
        return VideoGenerationResponse(
            request_id=job.job_id,
            video=urls[0],
            content_type=_content_type(urls[0]),
            raw_response=raw,
            provider=PROVIDER,
            model=job.model,
            expires_at=expires_at(prediction) or expires_at(job),
        )
    return ImageGenerationResponse(
        request_id=job.job_id,
        images=urls,
        content_type=_content_type(urls[0]) or "image/png",
        raw_response=raw,
        provider=PROVIDER,
        model=job.model,
        expires_at=expires_at(prediction) or expires_at(job),
    )


def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    """The finished prediction's output as a response."""
    known = job.data.get("prediction")
    if isinstance(known, Mapping):
        return _response(known, job)
    answer = yield Request(method="GET", url=f"/v1/predictions/{job.job_id}")
    prediction = answer.json()
    if not isinstance(prediction, Mapping):
        raise GenerationFailedError(
            f"Replicate answered prediction {job.job_id} with a non-object",
            provider=PROVIDER,
            model=job.model,
            request_id=job.job_id,
            phase="result",
        )
    return _response(prediction, job)


def cancel(config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    """``POST /v1/predictions/{id}/cancel``; False when the prediction had already finished."""
    known = job.data.get("prediction")
    if isinstance(known, Mapping):
        return False
    answer = yield Request(method="POST", url=f"/v1/predictions/{job.job_id}/cancel")
    try:
        state = answer.json().get("status")
    except (ValueError, AttributeError):
        state = None
    return state not in ("succeeded", "failed")
