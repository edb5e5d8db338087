"""The Example API calls behind the hooks: build each request, send it, read the answer.

Each lifecycle step is written once as "what to send" plus "how to read the answer"; the sync and
async hooks differ only in which client sends it (:mod:`._client`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tarash.tarash_gateway import get_provider_field_mapping
from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPError, ValidationError
from tarash.tarash_gateway.field_mappers import FieldMapper, apply_field_mappers, match_model_prefix
from tarash.tarash_gateway.models import ImageGenerationResponse, VideoGenerationResponse
from tarash.tarash_gateway.plugin import CallContext, JobRef, JobStatus, SubmittedJob

from . import _client
from ._fields import PROVIDER, SPEC

STATES = ("queued", "processing", "completed", "failed", "cancelled")


# --8<-- [start:payload]
def _mappers(config: Any, modality: str) -> Mapping[str, FieldMapper]:
    """The field mappers for ``config.model`` (including ones registered at runtime)."""
    table = get_provider_field_mapping(PROVIDER) or {}
    prefix = match_model_prefix(config.model, table)
    family = next((m for m in SPEC.models if m.prefix == prefix), None)
    if prefix is None or (family is not None and family.modality != modality):
        known = sorted(m.prefix for m in SPEC.models if m.modality == modality)
        raise ValidationError(
            f"Unknown {modality} model {config.model!r} for the example provider; known: {', '.join(known)}",
            field="model",
            value=config.model,
            allowed=known,
        )
    return table[prefix]


def _submit_call(config: Any, request: Any, context: CallContext) -> tuple[dict[str, Any], dict[str, str]]:
    """The POST /v1/jobs body (validated before anything is sent) and the 422 field names."""
    mappers = _mappers(config, context.modality)
    payload = apply_field_mappers(mappers, request, model=config.model)
    payload.update(request.extra_params)
    fields = {f"input.{api}": mapper.source_field for api, mapper in mappers.items()}
    return {"model": config.model, "input": payload}, fields


# --8<-- [end:payload]


def _submitted(answer: Mapping[str, Any]) -> SubmittedJob:
    return SubmittedJob(job_id=str(answer["id"]), data={"links": dict(answer["links"])})


# --8<-- [start:status]
def _status(answer: Mapping[str, Any], job: JobRef) -> JobStatus:
    state = answer.get("status")
    if state not in STATES:
        raise GenerationFailedError(
            f"Example API reported an unknown job status {state!r}",
            raw_response=answer,
            request_id=job.job_id,
            phase="poll",
        )
    error = None
    if state == "failed":
        reason = (answer.get("error") or {}).get("message", "no reason given")
        error = GenerationFailedError(
            f"Example API job {job.job_id} failed: {reason}",
            raw_response=answer,
            request_id=job.job_id,
            phase="poll",
        )
    return JobStatus(
        state=state,
        queue_position=answer.get("queue_position"),
        progress_percent=answer.get("progress"),
        logs=tuple(answer.get("logs") or ()),
        error=error,
        raw=answer,
    )


# --8<-- [end:status]


def _result(answer: Mapping[str, Any], job: JobRef) -> Any:
    output = answer.get("output") or {}
    if job.modality == "video":
        video = output.get("video")
        if not video or not video.get("url"):
            raise GenerationFailedError(
                "Example API result has no video",
                raw_response=answer,
                request_id=job.job_id,
                phase="result",
            )
        return VideoGenerationResponse(
            request_id=job.job_id,
            video=video["url"],
            content_type=video.get("content_type"),
            duration=video.get("duration_seconds"),
            aspect_ratio=video.get("aspect_ratio"),
            resolution=f"{video['width']}x{video['height']}" if "width" in video else None,
            raw_response=dict(answer),
        )
    images = [image["url"] for image in output.get("images") or () if image.get("url")]
    if not images:
        raise GenerationFailedError(
            "Example API result has no images",
            raw_response=answer,
            request_id=job.job_id,
            phase="result",
        )
    return ImageGenerationResponse(
        request_id=job.job_id, images=images, content_type="image/png", raw_response=dict(answer)
    )


def _link(job: JobRef, name: str) -> str:
    return str(job.data["links"][name])


# --8<-- [start:lifecycle]
def submit(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    body, fields = _submit_call(config, request, context)
    answer = _client.send(
        config,
        "POST",
        "/v1/jobs",
        body=body,
        fields=fields,
        phase="submit",
        timeout=context.timeout,
    )
    return _submitted(answer)


def status(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    answer = _client.send(config, "GET", _link(job, "status"), phase="poll", timeout=context.timeout)
    return _status(answer, job)


def result(config: Any, job: JobRef, context: CallContext) -> Any:
    answer = _client.send(config, "GET", _link(job, "result"), phase="result", timeout=context.timeout)
    return _result(answer, job)


def cancel(config: Any, job: JobRef, context: CallContext) -> bool:
    try:
        _client.send(config, "POST", _link(job, "cancel"), phase="cancel", timeout=context.timeout)
    except HTTPError as exc:
        if exc.status_code == 409:
            return False
        raise
    return True


# --8<-- [end:lifecycle]


async def submit_async(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    body, fields = _submit_call(config, request, context)
    answer = await _client.send_async(
        config,
        "POST",
        "/v1/jobs",
        body=body,
        fields=fields,
        phase="submit",
        timeout=context.timeout,
    )
    return _submitted(answer)


async def status_async(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    answer = await _client.send_async(
        config, "GET", _link(job, "status"), phase="poll", timeout=context.timeout
    )
    return _status(answer, job)


async def result_async(config: Any, job: JobRef, context: CallContext) -> Any:
    answer = await _client.send_async(
        config, "GET", _link(job, "result"), phase="result", timeout=context.timeout
    )
    return _result(answer, job)


async def cancel_async(config: Any, job: JobRef, context: CallContext) -> bool:
    try:
        await _client.send_async(
            config, "POST", _link(job, "cancel"), phase="cancel", timeout=context.timeout
        )
    except HTTPError as exc:
        if exc.status_code == 409:
            return False
        raise
    return True
