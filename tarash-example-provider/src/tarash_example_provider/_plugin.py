"""Entry point of the example provider. Each lifecycle hook is a *flow*: it yields ``Request``s and
receives ``Response``s; core sends them and throws an ``HTTPError`` in for a 4xx/5xx. No I/O here."""

# --8<-- [start:imports]
from __future__ import annotations

from typing import Any

import tarash.tarash_gateway as tarash  # models and records (t.Request...) load on first use,
from tarash.tarash_gateway import plugin as t  # not at discovery
from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPError, ValidationError
from tarash.tarash_gateway.field_mappers import apply_field_mappers
from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._fields import SPEC, mappers


@hookimpl
def register_providers() -> list[ProviderSpec]:
    return [SPEC]


# --8<-- [end:imports]
# --8<-- [start:submit]
@hookimpl
def submit(config: Any, request: Any, context: t.CallContext) -> t.Flow[t.SubmittedJob]:
    fields = mappers(config.model, context.modality)  # refuses bad values before anything is sent
    body = {"model": config.model, "input": {**apply_field_mappers(fields, request), **request.extra_params}}
    try:
        data = (yield t.Request(method="POST", url="/v1/jobs", json=body)).json()
    except HTTPError as exc:  # a 422 names API fields ("input.duration"): name the caller's field
        raw = exc.raw_response
        error = raw.get("error") if isinstance(raw, dict) else None
        detail = (error.get("details") or [None])[0] if isinstance(error, dict) else None
        if exc.status_code != 422 or not isinstance(detail, dict):
            raise
        api_field, value = str(detail.get("field")), detail.get("value")
        field = {f"input.{api}": m.source_field for api, m in fields.items()}.get(api_field, api_field[6:])
        message = f"Example API refused {api_field}: {detail.get('message')}"
        raise ValidationError(message, field=field, value=value, phase="submit", raw_response=raw) from None
    return t.SubmittedJob(job_id=str(data["id"]), data={"links": dict(data["links"])})


# --8<-- [end:submit]
# --8<-- [start:poll]
@hookimpl
def status(config: Any, job: t.JobRef, context: t.CallContext) -> t.Flow[t.JobStatus]:
    answer = (yield t.Request(method="GET", url=job.data["links"]["status"])).json()
    state, reason = answer.get("status"), (answer.get("error") or {}).get("message", "no reason given")
    if state not in ("queued", "processing", "completed", "failed", "cancelled"):
        raise GenerationFailedError(f"Example API sent an unknown job status {state!r}", raw_response=answer)
    failed = GenerationFailedError(f"Example API job {job.job_id} failed: {reason}")
    return t.JobStatus(
        state=state,
        queue_position=answer.get("queue_position"),
        progress_percent=answer.get("progress"),
        logs=tuple(answer.get("logs") or ()),
        error=failed if state == "failed" else None,
        raw=answer,
    )


@hookimpl
def result(config: Any, job: t.JobRef, context: t.CallContext) -> t.Flow[Any]:
    answer = (yield t.Request(method="GET", url=job.data["links"]["result"])).json()
    output = answer.get("output") or {}
    video, images = output.get("video") or {}, [image["url"] for image in output.get("images") or ()]
    if job.modality == "video" and video.get("url"):
        return tarash.VideoGenerationResponse(
            request_id=job.job_id,
            video=video["url"],
            content_type=video.get("content_type"),
            duration=video.get("duration_seconds"),
            aspect_ratio=video.get("aspect_ratio"),
            resolution=f"{video['width']}x{video['height']}" if "width" in video else None,
            raw_response=answer,
        )
    if job.modality == "image" and images:
        return tarash.ImageGenerationResponse(request_id=job.job_id, images=images, raw_response=answer)
    raise GenerationFailedError(f"Example API result has no {job.modality}", raw_response=answer)


@hookimpl
def cancel(config: Any, job: t.JobRef, context: t.CallContext) -> t.Flow[bool]:
    try:
        yield t.Request(method="POST", url=job.data["links"]["cancel"])
    except HTTPError as exc:
        if exc.status_code != 409:  # 409: the job had already finished
            raise
        return False
    return True


# --8<-- [end:poll]
# --8<-- [start:commands]
@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("example-server", help="run the Example API reference server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.set_defaults(func=_serve)


def _serve(args: Any) -> int:
    from .server import main  # imported only when the command runs

    return main(["--port", str(args.port)])


# --8<-- [end:commands]
# --8<-- [start:pricing]
@hookimpl
def pricing_rules(provider: str) -> tuple[Any, ...]:
    return t.PricingRule.per_family(SPEC.models, default_seconds=4)  # bills video per second, images each


# --8<-- [end:pricing]
