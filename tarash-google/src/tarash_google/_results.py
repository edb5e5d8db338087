"""Reading Google's answers: operations, interactions, ``:predict`` and ``:generateContent``.

Field names follow google-genai's converters (``_GenerateVideosOperation_from_*``,
``_GeneratedImage_from_vertex``, ``_gaos/google_genai.py::_output_properties_from_steps``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import ContentModerationError, GenerationFailedError, Phase
from tarash.tarash_gateway.models import ImageGenerationResponse, MediaContent, VideoGenerationResponse
from tarash.tarash_gateway.plugin import JobRef, JobStatus, Response

from ._errors import describe, is_safety_message

#: Gemini finish reasons that mean a safety or policy block (``types.FinishReason``).
BLOCKED_FINISH = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_INTERACTION_STATES: Mapping[str, str] = {
    "queued": "queued",
    "in_progress": "processing",
    "completed": "completed",
    "cancelled": "cancelled",
    "failed": "failed",
    "incomplete": "failed",
    "budget_exceeded": "failed",
    "requires_action": "failed",
}


def _malformed(what: str, raw: Any, job_id: str | None, phase: Phase) -> GenerationFailedError:
    return GenerationFailedError(
        f"Google answered without {what}", raw_response=raw, request_id=job_id, phase=phase
    )


def body(answer: Response, phase: Phase) -> Mapping[str, Any]:
    try:
        value = answer.json()
    except ValueError:
        value = None
    if not isinstance(value, Mapping):
        raise _malformed("a JSON object", answer.text[:500], None, phase)
    return value


def required(answer: Response, key: str, phase: Phase) -> str:
    value = body(answer, phase).get(key)
    if not isinstance(value, str) or not value:
        raise _malformed(f"{key!r}", body(answer, phase), None, phase)
    return value


def _decode(data: Any, raw: Any, job_id: str, phase: Phase) -> bytes:
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("valid base64 media", raw, job_id, phase) from None


# -- Veo operations ---------------------------------------------------------------------------


def _operation_output(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The GenerateVideoResponse: in ``response`` (Vertex) or ``response.generateVideoResponse`` (Gemini)."""
    response = state.get("response") or {}
    return response.get("generateVideoResponse", response) if isinstance(response, Mapping) else {}


def _filtered(output: Mapping[str, Any], job: JobRef, raw: Any, phase: Phase) -> ContentModerationError:
    reasons = "; ".join(map(str, output.get("raiMediaFilteredReasons") or ())) or "no reason given"
    count = output.get("raiMediaFilteredCount", 0)
    return ContentModerationError(
        f"Google filtered {count} generated sample(s): {reasons}",
        raw_response=raw,
        request_id=job.job_id,
        phase=phase,
    )


def _operation_failure(state: Mapping[str, Any], job: JobRef, phase: Phase) -> Exception | None:
    error = state.get("error")
    if isinstance(error, Mapping):
        message = f"Google operation {job.job_id} failed: {describe(error)}"
        if is_safety_message(str(error.get("message", ""))):
            return ContentModerationError(message, raw_response=state, request_id=job.job_id, phase=phase)
        return GenerationFailedError(message, raw_response=state, request_id=job.job_id, phase=phase)
    output = _operation_output(state)
    samples = output.get("videos") or output.get("generatedSamples") or ()
    if not samples:
        if output.get("raiMediaFilteredCount"):
            return _filtered(output, job, state, phase)
        return _malformed("a video in the finished operation", state, job.job_id, phase)
    return None


def operation_status(state: Mapping[str, Any], job: JobRef) -> JobStatus:
    if not state.get("done"):
        return JobStatus(state="processing", raw=state)
    error = _operation_failure(state, job, "poll")
    if error is not None:
        return JobStatus(state="failed", error=error, raw=state)
    return JobStatus(state="completed", raw=state)


@attrs.frozen
class Video:
    """The first generated video: bytes, or a URI (``gs://``, or a Files API download link)."""

    source: bytes | str = attrs.field(repr=False)
    mime_type: str = "video/mp4"


def operation_video(state: Mapping[str, Any], job: JobRef) -> Video:
    error = _operation_failure(state, job, "result")
    if error is not None:
        raise error
    output = _operation_output(state)
    sample = next(iter(output.get("videos") or output.get("generatedSamples") or ()))
    video = sample.get("video", sample) if isinstance(sample, Mapping) else {}
    mime = str(video.get("mimeType") or video.get("encoding") or "video/mp4")
    encoded = video.get("bytesBase64Encoded") or video.get("encodedVideo")
    if encoded:
        return Video(source=_decode(encoded, state, job.job_id, "result"), mime_type=mime)
    uri = video.get("gcsUri") or video.get("uri")
    if not uri:
        raise _malformed("a video URI or bytes", state, job.job_id, "result")
    return Video(source=str(uri), mime_type=mime)


# -- interactions (Omni) ----------------------------------------------------------------------


def _interaction_failure(state: Mapping[str, Any], job: JobRef, phase: Phase) -> Exception:
    errors = [e for e in state.get("errors") or () if isinstance(e, Mapping)]
    for step in state.get("steps") or ():
        if isinstance(step, Mapping) and isinstance(step.get("error"), Mapping):
            errors.append(step["error"])
    text = "; ".join(str(e.get("message") or e.get("code") or "") for e in errors) or "no reason given"
    message = f"Google interaction {job.job_id} ended {state.get('status')}: {text}"
    if is_safety_message(text):
        return ContentModerationError(message, raw_response=state, request_id=job.job_id, phase=phase)
    return GenerationFailedError(message, raw_response=state, request_id=job.job_id, phase=phase)


def interaction_status(state: Mapping[str, Any], job: JobRef) -> JobStatus:
    reported = str(state.get("status"))
    mapped = _INTERACTION_STATES.get(reported)
    if mapped is None:
        error = GenerationFailedError(
            f"Google interaction {job.job_id} has an unknown status {reported!r}",
            raw_response=state,
            request_id=job.job_id,
            phase="poll",
        )
        return JobStatus(state="failed", error=error, raw=state)
    if mapped == "failed":
        return JobStatus(state="failed", error=_interaction_failure(state, job, "poll"), raw=state)
    return JobStatus(state=mapped, raw=state)  # type: ignore[arg-type]


def interaction_video(state: Mapping[str, Any], job: JobRef) -> Video:
    """The last video content of the model's output steps (as the SDK's ``output_video``)."""
    if state.get("status") != "completed":
        raise _interaction_failure(state, job, "result")
    for step in reversed(state.get("steps") or ()):
        if not isinstance(step, Mapping) or step.get("type") != "model_output":
            continue
        for item in reversed(step.get("content") or ()):
            if isinstance(item, Mapping) and item.get("type") == "video":
                mime = str(item.get("mime_type") or "video/mp4")
                if item.get("data"):
                    return Video(source=_decode(item["data"], state, job.job_id, "result"), mime_type=mime)
                if item.get("uri"):
                    return Video(source=str(item["uri"]), mime_type=mime)
    raise _malformed("a video in the finished interaction", state, job.job_id, "result")


def video_response(video: Video, state: Mapping[str, Any], job: JobRef) -> VideoGenerationResponse:
    source: Any = video.source
    if isinstance(source, bytes):
        source = MediaContent(content=source, content_type=video.mime_type)
    return VideoGenerationResponse(
        request_id=job.job_id, video=source, content_type=video.mime_type, raw_response=_slim(state)
    )


def _slim(state: Mapping[str, Any]) -> dict[str, Any]:
    """The answer without inline media (kept as bytes in the response itself)."""

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: f"<{len(v)} base64 chars>"
                if k in ("data", "bytesBase64Encoded", "encodedVideo") and isinstance(v, str)
                else strip(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(state))


# -- images -----------------------------------------------------------------------------------


def imagen_images(payload: Mapping[str, Any], job_id: str) -> list[str]:
    """Data URIs (or ``gs://`` URIs) of the unfiltered predictions; all filtered -> moderation."""
    images, reasons = [], []
    for prediction in payload.get("predictions") or ():
        if not isinstance(prediction, Mapping):
            continue
        if prediction.get("raiFilteredReason"):
            reasons.append(str(prediction["raiFilteredReason"]))
        elif prediction.get("bytesBase64Encoded"):
            mime = str(prediction.get("mimeType") or "image/png")
            _decode(prediction["bytesBase64Encoded"], _slim(payload), job_id, "submit")
            images.append(f"data:{mime};base64,{prediction['bytesBase64Encoded']}")
        elif prediction.get("gcsUri"):
            images.append(str(prediction["gcsUri"]))
    if not images:
        why = "; ".join(reasons) or "Imagen returned no images (its filters drop blocked prompts silently)"
        raise ContentModerationError(
            f"Google filtered the images: {why}",
            raw_response=_slim(payload),
            request_id=job_id,
            phase="submit",
        )
    return images


def gemini_images(payload: Mapping[str, Any], job_id: str) -> list[str]:
    """Data URIs of the image parts; a blocked prompt or candidate -> moderation with the reason."""
    feedback = payload.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        detail = feedback.get("blockReasonMessage") or ""
        raise ContentModerationError(
            f"Google blocked the prompt: {feedback['blockReason']}{': ' + detail if detail else ''}",
            raw_response=_slim(payload),
            request_id=job_id,
            phase="submit",
        )
    images, finish = [], []
    for candidate in payload.get("candidates") or ():
        if not isinstance(candidate, Mapping):
            continue
        finish.append((str(candidate.get("finishReason") or ""), str(candidate.get("finishMessage") or "")))
        for part in (candidate.get("content") or {}).get("parts") or ():
            inline = part.get("inlineData") if isinstance(part, Mapping) else None
            if isinstance(inline, Mapping) and inline.get("data"):
                _decode(inline["data"], _slim(payload), job_id, "submit")
                images.append(f"data:{inline.get('mimeType') or 'image/png'};base64,{inline['data']}")
    if images:
        return images
    blocked = [(reason, message) for reason, message in finish if reason in BLOCKED_FINISH]
    if blocked:
        reason, message = blocked[0]
        raise ContentModerationError(
            f"Google blocked the image: {reason}{': ' + message if message else ''}",
            raw_response=_slim(payload),
            request_id=job_id,
            phase="submit",
        )
    reasons = ", ".join(reason for reason, _ in finish if reason) or "none"
    raise GenerationFailedError(
        f"Google answered without an image (finish reasons: {reasons})",
        raw_response=_slim(payload),
        request_id=job_id,
        phase="submit",
    )


def held_images(job: JobRef, lock: threading.Lock, held: OrderedDict[str, Any]) -> ImageGenerationResponse:
    """The images of an image job: its ``gs://`` URIs, or the bytes held by the submitting process."""
    images = list(job.data.get("images") or ())
    if not images:
        with lock:
            images = held.pop(job.job_id, None) or []
    if not images:
        raise GenerationFailedError(
            f"The images of {job.job_id} were returned inline to the process that generated them and are "
            "no longer held (set provider_config['output_gcs_uri'] on google-vertex to keep them in "
            "Cloud Storage)",
            request_id=job.job_id,
            phase="result",
            retryable=False,
        )
    content_type = (
        images[0].split(";")[0].removeprefix("data:") if images[0].startswith("data:") else "image/png"
    )
    return ImageGenerationResponse(request_id=job.job_id, images=images, content_type=content_type)
