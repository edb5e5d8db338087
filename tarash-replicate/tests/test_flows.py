"""The flows driven by hand: status mapping, progress, error translation, cancel, result shapes."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import answer, context, finish, http_error, image_config, job, no_request, video_config

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    JobCancelledError,
    ValidationError,
)
from tarash.tarash_gateway.models import VideoGenerationRequest
from tarash_replicate import _flows, _plugin


def prediction(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "p1", "status": status, "created_at": "2026-12-01T10:00:00.123456789Z", **fields}


def status_of(body: Any) -> Any:
    flow = _plugin.status(video_config(), job(), context())
    request = next(flow)
    assert (request.method, request.url) == ("GET", "/v1/predictions/p1")
    return finish(flow, answer(body))


@pytest.mark.parametrize(
    ("replicate", "state"),
    [
        ("starting", "queued"),
        ("processing", "processing"),
        ("succeeded", "completed"),
        ("canceled", "cancelled"),
    ],
)
def test_statuses_map_to_job_states(replicate: str, state: str) -> None:
    assert status_of(prediction(replicate)).state == state


def test_progress_is_read_from_the_last_progress_bar_in_the_logs() -> None:
    logs = "loading\n 10%|#         | 2/20 [00:01<00:09]\n 45%|####      | 9/20 [00:04<00:05]\nstill going"
    observed = status_of(prediction("processing", logs=logs))
    assert observed.progress_percent == 45.0
    assert observed.logs == (
        "loading",
        " 10%|#         | 2/20 [00:01<00:09]",
        " 45%|####      | 9/20 [00:04<00:05]",
        "still going",
    )
    assert status_of(prediction("processing", logs="no bar here")).progress_percent is None


def test_a_failed_prediction_carries_a_typed_error() -> None:
    failed = status_of(prediction("failed", error="Prediction interrupted; please retry (code: PA)"))
    assert failed.state == "failed"
    assert isinstance(failed.error, GenerationFailedError)
    assert failed.error.request_id == "p1" and failed.error.phase == "poll"
    refused = status_of(prediction("failed", error="The input or output was flagged as sensitive. (E005)"))
    assert isinstance(refused.error, ContentModerationError)


def test_the_raw_status_leaves_out_the_input() -> None:
    observed = status_of(prediction("processing", input={"image": "data:image/png;base64,AAAA"}))
    assert "input" not in observed.raw and observed.raw["status"] == "processing"


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(GenerationFailedError, match="unknown status 'paused'"):
        status_of(prediction("paused"))


def submit_error(exc: HTTPError, model: str = "google/veo-3", **request: Any) -> BaseException:
    config = video_config(model, provider_config={"schema": False})
    flow = _plugin.submit(config, VideoGenerationRequest(prompt="x", **request), context())
    next(flow)
    with pytest.raises(Exception) as caught:
        flow.throw(exc)
    return caught.value


def test_a_422_names_the_unified_field_from_invalid_fields() -> None:
    body = {
        "title": "Input validation failed",
        "detail": "- input.duration: duration must be one of [4, 6, 8]\n",
        "status": 422,
        "invalid_fields": [{"type": "enum", "field": "input.duration", "description": "must be one of"}],
    }
    error = submit_error(http_error(body, 422), duration_seconds=8)
    assert isinstance(error, ValidationError)
    assert error.field == "duration_seconds"
    assert "Input validation failed" in error.message


def test_a_422_without_invalid_fields_is_read_from_the_detail() -> None:
    body = {
        "title": "Input validation failed",
        "detail": "- input.motion: Does not match pattern",
        "status": 422,
    }
    error = submit_error(http_error(body, 422))
    assert isinstance(error, ValidationError) and error.field == "input.motion"


def test_a_404_by_name_says_community_models_need_a_version() -> None:
    error = submit_error(http_error({"title": "Not found", "status": 404}, 404), model="someone/their-model")
    assert isinstance(error, ValidationError) and error.field == "model"
    assert "owner/name:<version>" in error.message


def test_a_refusal_at_create_is_a_content_moderation_error() -> None:
    body = {
        "title": "Bad request",
        "detail": "Prompt flagged as sensitive by the safety filter",
        "status": 400,
    }
    assert isinstance(submit_error(http_error(body, 400)), ContentModerationError)


@pytest.mark.parametrize("status_code", [401, 429, 500, 503])
def test_other_errors_propagate_unchanged(status_code: int) -> None:
    original = http_error({"title": "x", "status": status_code}, status_code)
    assert submit_error(original) is original


def test_an_answer_without_an_id_is_refused() -> None:
    flow = _plugin.submit(video_config(), VideoGenerationRequest(prompt="x"), context())
    next(flow)
    with pytest.raises(GenerationFailedError, match="no usable id"):
        flow.send(answer({"status": "starting"}, 201))


def test_a_finished_create_answer_needs_no_status_or_result_request() -> None:
    flow = _plugin.submit(image_config("google/imagen-4-fast"), _image_request(), context("image"))
    next(flow)
    done = prediction("succeeded", output="https://replicate.delivery/x/out.png")
    submitted = finish(flow, answer(done, 201))
    assert submitted.job_id == "p1"
    assert submitted.data == {"created_at": done["created_at"], "prediction": done}
    ref = job(modality="image", model="google/imagen-4-fast", **submitted.data)
    assert no_request(_plugin.status(image_config(), ref, context("image"))).state == "completed"
    images = no_request(_plugin.result(image_config(), ref, context("image")))
    assert images.images == ["https://replicate.delivery/x/out.png"] and images.content_type == "image/png"
    assert no_request(_plugin.cancel(image_config(), ref, context("image"))) is False


def test_a_running_create_answer_keeps_only_the_creation_time() -> None:
    flow = _plugin.submit(video_config(), VideoGenerationRequest(prompt="x"), context())
    next(flow)
    assert finish(flow, answer(prediction("starting"), 201)).data == {
        "created_at": prediction("x")["created_at"]
    }


def _image_request() -> Any:
    from tarash.tarash_gateway.models import ImageGenerationRequest

    return ImageGenerationRequest(prompt="x")


def result_of(body: Any, modality: str = "video") -> Any:
    flow = _plugin.result(video_config(), job(modality=modality), context(modality))
    request = next(flow)
    assert (request.method, request.url) == ("GET", "/v1/predictions/p1")
    return finish(flow, answer(body))


def test_result_shapes() -> None:
    video = result_of(prediction("succeeded", output="https://replicate.delivery/a/v.mp4"))
    assert (video.video, video.content_type, video.provider) == (
        "https://replicate.delivery/a/v.mp4",
        "video/mp4",
        "replicate",
    )
    listed = result_of(prediction("succeeded", output=["https://r.d/a.webp", "https://r.d/b.webp"]), "image")
    assert listed.images == ["https://r.d/a.webp", "https://r.d/b.webp"]
    nested = result_of(prediction("succeeded", output={"video": "https://r.d/v.mov"}))
    assert (nested.video, nested.content_type) == ("https://r.d/v.mov", "video/quicktime")


def test_result_errors() -> None:
    with pytest.raises(GenerationFailedError, match="no output URL"):
        result_of(prediction("succeeded", output=None))
    with pytest.raises(JobCancelledError):
        result_of(prediction("canceled"))
    with pytest.raises(GenerationFailedError, match="one hour") as caught:
        result_of(prediction("succeeded", output=None, data_removed=True))
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("replicate", "accepted"),
    [("canceled", True), ("processing", True), ("starting", True), ("succeeded", False), ("failed", False)],
)
def test_cancel_is_false_only_when_the_prediction_had_finished(replicate: str, accepted: bool) -> None:
    flow = _plugin.cancel(video_config(), job(), context())
    request = next(flow)
    assert (request.method, request.url) == ("POST", "/v1/predictions/p1/cancel")
    assert finish(flow, answer(prediction(replicate))) is accepted


def test_progress_parser_ignores_empty_totals() -> None:
    assert _flows.progress_from_logs("  0%|          | 0/0 [00:00<?, ?it/s]") is None
    assert _flows.progress_from_logs(None) is None
