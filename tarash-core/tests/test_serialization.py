"""Plain dicts and JSON for every model, plugin record and job record, and back.

Round trips go through real JSON text; error messages and their paths are asserted exactly; no API
key ever reaches the output.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter
from hypothesis import given, settings
from hypothesis import strategies as st

from tarash.tarash_gateway import _plain
from tarash.tarash_gateway._ledger import JobEvent, JobRecord
from tarash.tarash_gateway._plain import unstructure
from tarash.tarash_gateway.costs import Cost
from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPError,
    TarashException,
    TimeoutError,
    ValidationError,
)
from tarash.tarash_gateway.jobs import JobHandle, JobOutcome
from tarash.tarash_gateway.models import (
    AttemptMetadata,
    ExecutionMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    ImageType,
    MediaContent,
    MockConfig,
    MockPollingConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)
from tarash.tarash_gateway.plugin import (
    CallContext,
    Capabilities,
    JobRef,
    JobStatus,
    ModelFamily,
    SubmittedJob,
)
from tarash.tarash_gateway.serialization import from_dict, from_json, to_dict, to_json

SECRET = "sk-serialization-secret-0123456789"
T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
PNG = MediaContent(content=b"\x89PNG\r\n\x1a\n\x00\x01", content_type="image/png")
MP4 = MediaContent(content=bytes(range(256)) * 4, content_type="video/mp4")


def _attempt(number: int, status: str = "success") -> AttemptMetadata:
    return AttemptMetadata(
        provider="fal",
        model="fal-ai/veo3",
        attempt_number=number,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=12.5),
        status=status,  # type: ignore[arg-type]
        error_type="HTTPError" if status == "failed" else None,
        error_message="HTTP 503 from provider" if status == "failed" else None,
        is_retryable=status == "failed",
        request_id=f"req-{number}",
        phase="poll",
        cancel_status="cancelled" if status == "failed" else None,
        cost=Cost(
            amount="3.20",
            unit="second",
            quantity=8,
            unit_price="0.40",
            source="bundled-table",
            variant="1080p",
        ),
    )


EXECUTION = ExecutionMetadata(
    total_attempts=2,
    successful_attempt=2,
    attempts=(_attempt(1, "failed"), _attempt(2)),
    fallback_triggered=True,
    configs_in_chain=3,
)
VIDEO_RESPONSE = VideoGenerationResponse(
    request_id="req-2",
    video=MP4,
    content_type="video/mp4",
    audio_url="https://cdn.test/a.mp3",
    duration=8.0,
    resolution="1280x720",
    aspect_ratio="16:9",
    raw_response={"seed": 7, "ok": True},
    execution_metadata=EXECUTION,
    provider="fal",
    model="fal-ai/veo3",
)
IMAGE_RESPONSE = ImageGenerationResponse(
    request_id="img-1",
    images=["https://cdn.test/1.png", PNG.to_data_uri()],
    content_type="image/png",
    revised_prompt="a red fox, detailed",
    raw_response={"timings": {"inference": 1.5}},
    provider="fal",
    model="fal-ai/flux/dev",
)
POLLING = MockPollingConfig(
    status_sequence=("queued", "processing", "completed"),
    delay_between_updates=0.25,
    progress_percentages=(0, 50, 100),
    custom_updates=({"a": 1}, {}, {"b": [1, 2]}),
    queue_positions=(3,),
)
MOCK = MockConfig(
    responses=(
        MockResponse(weight=2.0, output_video=MP4, output_video_type="content"),
        MockResponse(weight=1.0, mock_response=VIDEO_RESPONSE),
        MockResponse(weight=0.5, output_images=("https://cdn.test/x.png",)),
    ),
    polling=POLLING,
    seed=42,
)
FALLBACK = VideoGenerationConfig(
    model="fal-ai/kling",
    provider="fal",
    api_key=SECRET,
    timeout=300,
    fallback_configs=[VideoGenerationConfig(model="mock", provider="mock")],
)
VIDEO_CONFIG = VideoGenerationConfig(
    model="fal-ai/veo3",
    provider="fal",
    api_key=SECRET,
    base_url="https://fal.test",
    api_version="v1",
    timeout=900.5,
    max_poll_attempts=40,
    poll_interval=2.5,
    mock=MOCK,
    fallback_configs=[FALLBACK],
    provider_config={"ca_bundle": "/tmp/ca.pem", "region": ["eu"]},
)
IMAGE_CONFIG = ImageGenerationConfig(
    model="fal-ai/flux/dev",
    provider="fal",
    api_key=SECRET,
    timeout=60,
    fallback_configs=[ImageGenerationConfig(model="mock-image", provider="mock")],
)
VIDEO_REQUEST = VideoGenerationRequest(
    prompt="a lighthouse at dawn",
    duration_seconds=8,
    resolution="1080p",
    aspect_ratio="16:9",
    generate_audio=True,
    image_list=[
        {"image": PNG, "type": "first_frame"},
        {"image": "https://cdn.test/style.png", "type": "style"},
    ],
    video=MP4,
    seed=2**40,
    number_of_videos=2,
    negative_prompt="blur",
    enhance_prompt=False,
    cfg_scale=0.5,
    camera={"motion": "pan", "speed": [1, 2]},
)
IMAGE_REQUEST = ImageGenerationRequest(
    prompt="a red fox",
    negative_prompt="text",
    size="1024x1024",
    quality="hd",
    style="photo",
    n=3,
    image_list=[ImageType(image="https://cdn.test/ref.png", type="reference")],
    mask_image=PNG,
    seed=-5,
    aspect_ratio="1:1",
    guidance=7.5,
)
JOB = JobRef(
    provider="fal",
    model="fal-ai/veo3",
    modality="video",
    job_id="req-9",
    data={"status_url": "https://queue.fal.test/x/requests/req-9/status", "n": [1, 2]},
    submitted_at=T0,
)
FAILED_STATUS = JobStatus(
    state="failed",
    queue_position=None,
    progress_percent=55.5,
    logs=("one", "two"),
    poll_after=1.5,
    error=HTTPError(
        "HTTP 503 from provider",
        status_code=503,
        retry_after=2.0,
        provider="fal",
        model="fal-ai/veo3",
        request_id="req-9",
        phase="poll",
    ),
    raw={"status": "FAILED"},
)
RECORD = JobRecord(
    key="k1",
    provider="fal",
    model="fal-ai/veo3",
    modality="video",
    state="completed",
    finished=True,
    job_id="req-9",
    job=JOB,
    config={"model": "fal-ai/veo3"},
    request={"prompt": "x"},
    result={"video": "https://cdn.test/v.mp4"},
    error=None,
    detail={"progress_percent": 100},
    cancel=None,
    created_at=T0,
    updated_at=T0 + timedelta(seconds=30),
    finished_at=T0 + timedelta(seconds=30),
)

#: One instance of every record the converter handles, with non-default values throughout.
SAMPLES: list[Any] = [
    PNG,
    ImageType(image=PNG, type="asset"),
    ImageType(image="https://cdn.test/a.png", type="reference"),
    POLLING,
    MockResponse(weight=3.0, output_video="https://cdn.test/v.mp4"),
    MOCK,
    VIDEO_CONFIG,
    IMAGE_CONFIG,
    VIDEO_REQUEST,
    IMAGE_REQUEST,
    _attempt(1, "failed"),
    EXECUTION,
    VIDEO_RESPONSE,
    IMAGE_RESPONSE,
    VideoGenerationUpdate(
        request_id="req-2",
        status="processing",
        progress_percent=40.0,
        update={"status": "IN_PROGRESS"},
        queue_position=None,
        logs=("step 1",),
        attempt=2,
        provider="fal",
        model="fal-ai/veo3",
        elapsed_seconds=3.25,
    ),
    VideoGenerationUpdate(request_id="req-2", status="completed", result=VIDEO_RESPONSE),
    ImageGenerationUpdate(request_id="img-1", status="failed", error="moderated", result=IMAGE_RESPONSE),
    Capabilities(
        cancel=True,
        queue_position=True,
        progress_percent=True,
        logs=True,
        webhooks=True,
        idempotency_key=True,
        resume=False,
    ),
    ModelFamily(
        prefix="fal-ai/veo3",
        modality="video",
        name="Veo 3",
        allowed={"duration_seconds": (4, 6, 8)},
        description="Google Veo 3",
    ),
    CallContext(provider="fal", modality="image", timeout=12.5, attempt=3, idempotency_key="ik"),
    SubmittedJob(job_id="req-9", data={"response_url": "https://q.test/r"}, poll_after=0.5),
    JOB,
    JobStatus(state="queued", queue_position=4, raw={"status": "IN_QUEUE"}),
    FAILED_STATUS,
    JobHandle(key="k1", job=JOB, config=attrs.evolve(VIDEO_CONFIG, fallback_configs=None)),
    RECORD,
    JobEvent(key="k1", at=T0, kind="status", state="processing", detail={"progress_percent": 5}),
    JobOutcome(
        key="k1",
        provider="fal",
        model="fal-ai/veo3",
        modality="video",
        job_id="req-9",
        state="completed",
        response=VIDEO_RESPONSE,
    ),
]


def _comparable(obj: Any) -> Any:
    """The object with its API keys dropped, as loading gives it back."""
    if isinstance(obj, (VideoGenerationConfig, ImageGenerationConfig)):
        fallbacks = obj.fallback_configs
        return attrs.evolve(
            obj,
            api_key=None,
            fallback_configs=None if fallbacks is None else [_comparable(c) for c in fallbacks],
        )
    if isinstance(obj, JobHandle):
        return attrs.evolve(obj, config=_comparable(obj.config))
    return obj


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_every_record_round_trips_through_json(obj: Any) -> None:
    text = to_json(obj)
    assert json.loads(text) == to_dict(obj)
    loaded = from_json(type(obj), text)
    assert type(loaded) is type(obj)
    assert to_dict(loaded) == to_dict(obj)
    if not _holds_exception(obj):
        assert loaded == _comparable(obj)
    assert SECRET not in text


def _cattrs_writer() -> Any:
    """What cattrs writes with the hooks it generates, given the leaf rules ``_plain`` documents:
    bytes as base64, Decimal as a string, exceptions as ``_plain`` writes them, and no
    ``api_key`` in configs."""
    reference = make_converter()
    reference.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    reference.register_unstructure_hook(Decimal, str)
    reference.register_unstructure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, BaseException), lambda _t: _plain._exception
    )

    def generated(cls: type[Any]) -> Any:
        attrs.resolve_types(cls, localns={"TarashException": TarashException, "JobRef": JobRef})
        omitted = (
            {"api_key": override(omit=True)} if cls in (VideoGenerationConfig, ImageGenerationConfig) else {}
        )
        return make_dict_unstructure_fn(cls, reference, **omitted)

    reference.register_unstructure_hook_factory(attrs.has, generated)
    return reference


@pytest.mark.parametrize(
    "obj",
    [*SAMPLES, VideoGenerationConfig(model="m", provider="p"), VideoGenerationRequest(prompt="x")],
    ids=lambda o: type(o).__name__,
)
def test_records_are_written_as_the_hooks_cattrs_generates_write_them(obj: Any) -> None:
    """``_plain`` writes records by their values, without cattrs (a fresh process's first ledger
    write loads none of it): exactly the data of the hooks cattrs generates from the declared
    types."""
    assert unstructure(obj) == _cattrs_writer().unstructure(obj)


@attrs.frozen
class RegionConfig(VideoGenerationConfig):
    """A user's config subclass."""

    region: str = "eu"


def test_a_config_subclass_never_writes_its_api_key() -> None:
    config = RegionConfig(model="m", provider="p", api_key="sk-subclass-key-123")
    written = unstructure(config)
    assert "api_key" not in written
    assert written["region"] == "eu"
    assert "sk-subclass-key-123" not in json.dumps(written)


def test_a_config_subclass_never_reads_an_api_key() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(RegionConfig, {"model": "m", "provider": "p", "api_key": SECRET})
    assert info.value.field == "api_key"
    assert SECRET not in str(info.value)
    assert from_dict(RegionConfig, {"model": "m", "provider": "p", "region": "us"}).region == "us"


def _holds_exception(obj: Any) -> bool:
    return isinstance(obj, JobStatus) and obj.error is not None


def test_exact_dict_of_media_datetimes_and_bytes() -> None:
    assert to_dict(PNG) == {"content": "iVBORw0KGgoAAQ==", "content_type": "image/png"}
    assert to_dict(_attempt(2)) == {
        "provider": "fal",
        "model": "fal-ai/veo3",
        "attempt_number": 2,
        "started_at": "2024-05-06T07:08:09.123456+00:00",
        "ended_at": "2024-05-06T07:08:21.623456+00:00",
        "status": "success",
        "error_type": None,
        "error_message": None,
        "is_retryable": False,
        "request_id": "req-2",
        "phase": "poll",
        "cancel_status": None,
        "cancel_error": None,
        "cost": {
            "amount": "3.20",
            "currency": "USD",
            "unit": "second",
            "quantity": "8",
            "unit_price": "0.40",
            "source": "bundled-table",
            "kind": "estimate",
            "variant": "1080p",
        },
    }
    assert to_dict(JOB) == {
        "provider": "fal",
        "model": "fal-ai/veo3",
        "modality": "video",
        "job_id": "req-9",
        "data": {"status_url": "https://queue.fal.test/x/requests/req-9/status", "n": [1, 2]},
        "submitted_at": "2024-05-06T07:08:09.123456+00:00",
    }


def test_configs_never_carry_the_api_key_at_any_depth() -> None:
    data = to_dict(VIDEO_CONFIG)
    assert "api_key" not in data
    assert "api_key" not in data["fallback_configs"][0]
    assert "api_key" not in data["fallback_configs"][0]["fallback_configs"][0]
    loaded = from_dict(VideoGenerationConfig, data)
    assert loaded.api_key is None
    assert loaded.fallback_configs is not None
    assert loaded.fallback_configs[0].api_key is None
    assert loaded.fallback_configs[0].fallback_configs[0] == FALLBACK.fallback_configs[0]  # type: ignore[index]
    assert loaded.mock == MOCK


def test_a_known_key_elsewhere_in_the_data_is_scrubbed() -> None:
    leaky = attrs.evolve(VIDEO_CONFIG, provider_config={"headers": {"X-Note": f"key {SECRET}"}})
    text = to_json(leaky)
    assert SECRET not in text
    assert json.loads(text)["provider_config"] == {"headers": {"X-Note": "key ***REDACTED***"}}


def test_loading_refuses_an_api_key() -> None:
    data = {"model": "m", "provider": "fal", "api_key": SECRET}
    with pytest.raises(ValidationError) as info:
        from_dict(VideoGenerationConfig, data)
    assert info.value.message == (
        "Invalid VideoGenerationConfig: api_key is never read from serialised data; pass "
        "api_key= when loading, set it on the config, or set the provider's environment "
        "variable @ $.api_key"
    )
    assert info.value.field == "api_key"
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_requests_are_built_through_their_constructor() -> None:
    request = from_dict(
        VideoGenerationRequest, {"prompt": "a cat", "cfg_scale": 0.5, "extra_params": {"steps": 20}}
    )
    assert request.extra_params == {"steps": 20, "cfg_scale": 0.5}
    image = from_dict(ImageGenerationRequest, {"prompt": "a fox", "lora": {"w": 1}})
    assert image.extra_params == {"lora": {"w": 1}}
    assert image.n == 1
    assert to_dict(VIDEO_REQUEST)["extra_params"] == {
        "cfg_scale": 0.5,
        "camera": {"motion": "pan", "speed": [1, 2]},
    }


@pytest.mark.parametrize(
    ("cls", "data", "field", "message"),
    [
        (
            VideoGenerationConfig,
            {"model": 5, "provider": "fal"},
            "model",
            "invalid value for type, expected str @ $.model",
        ),
        (VideoGenerationConfig, {"provider": "fal"}, "model", "required field missing @ $.model"),
        (
            VideoGenerationConfig,
            {"model": "m", "provider": "fal", "timout": 3},
            None,
            "extra fields found (timout) @ $",
        ),
        (
            VideoGenerationConfig,
            {"model": "m", "provider": "fal", "max_poll_attempts": True},
            "max_poll_attempts",
            "invalid value for type, expected int @ $.max_poll_attempts",
        ),
        (
            VideoGenerationConfig,
            {"model": "m", "provider": "fal", "max_poll_attempts": "12"},
            "max_poll_attempts",
            "invalid value for type, expected int @ $.max_poll_attempts",
        ),
        (
            VideoGenerationConfig,
            {"model": "m", "provider": "fal", "timeout": "600"},
            "timeout",
            "invalid value for type, expected float @ $.timeout",
        ),
        (
            VideoGenerationConfig,
            {
                "model": "m",
                "provider": "fal",
                "fallback_configs": [{"model": "n", "provider": "fal", "timeout": -1}],
            },
            "fallback_configs[0].timeout",
            "expected a number > 0, got -1 @ $.fallback_configs[0].timeout",
        ),
        (
            VideoGenerationConfig,
            {"model": "m", "provider": "fal", "fallback_configs": "x"},
            "fallback_configs",
            "invalid value for type, expected list of VideoGenerationConfig or null @ $.fallback_configs",
        ),
        (
            VideoGenerationRequest,
            {
                "prompt": "a",
                "image_list": [
                    {"image": "https://x.test/a.png", "type": "reference"},
                    {"image": "https://x.test/b.png", "type": "background"},
                ],
            },
            "image_list[1].type",
            "invalid value for type, expected one of 'reference', 'first_frame', 'last_frame', "
            "'asset', 'style' @ $.image_list[1].type",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "a", "video": {"content": "!!", "content_type": "v/x"}},
            "video.content",
            "invalid base64 content @ $.video.content",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "a", "video": 5},
            "video",
            "invalid value for type, expected str or MediaContent or null @ $.video",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "a", "duration_seconds": 0},
            "duration_seconds",
            "expected an integer >= 1, got 0 @ $.duration_seconds",
        ),
        (VideoGenerationRequest, [1, 2], None, "expected an object, got array @ $"),
        (
            AttemptMetadata,
            {"provider": "p", "model": "m", "attempt_number": 1, "started_at": "yesterday"},
            "started_at",
            "invalid value for type, expected datetime @ $.started_at",
        ),
        (
            JobStatus,
            {"state": "done"},
            "state",
            "invalid value for type, expected one of 'queued', 'processing', 'completed', "
            "'failed', 'cancelled' @ $.state",
        ),
        (
            JobStatus,
            {"state": "failed", "error": {"type": "os.system", "message": "rm"}},
            "error",
            "unsupported exception type 'os.system': only Tarash and built-in exceptions can be "
            "restored @ $.error",
        ),
        (
            JobHandle,
            {
                "key": "k",
                "job": {
                    "provider": "mock",
                    "model": "m",
                    "modality": "image",
                    "job_id": "j",
                    "submitted_at": "2024-01-01T00:00:00+00:00",
                },
                "config": {"model": "m", "provider": "mock", "timeout": "x"},
            },
            "config.timeout",
            "invalid value for type, expected float @ $.config.timeout",
        ),
    ],
)
def test_errors_name_every_path(cls: type[Any], data: Any, field: str | None, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(cls, data)
    assert info.value.message == f"Invalid {cls.__name__}: {message}"
    assert info.value.field == field
    assert info.value.phase == "validate"
    assert not info.value.retryable


def test_every_problem_is_listed_in_order() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(
            VideoGenerationConfig,
            {"model": 5, "provider": "p", "timeout": "x", "poll_interval": None, "junk": 1},
        )
    assert info.value.message == (
        "Invalid VideoGenerationConfig: invalid value for type, expected str @ $.model; "
        "invalid value for type, expected float @ $.timeout; invalid value for type, expected "
        "float @ $.poll_interval; extra fields found (junk) @ $"
    )


def test_bad_json_text_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        from_json(VideoGenerationConfig, '{"model": "m",')
    assert (
        info.value.message == "Invalid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 15"
    )


def test_exceptions_come_back_with_their_type_and_fields() -> None:
    loaded = from_json(JobStatus, to_json(FAILED_STATUS))
    error = loaded.error
    assert isinstance(error, HTTPError)
    assert (
        error.message,
        error.status_code,
        error.retry_after,
        error.provider,
        error.request_id,
        error.phase,
        error.retryable,
    ) == ("HTTP 503 from provider", 503, 2.0, "fal", "req-9", "poll", True)
    mock = from_json(MockResponse, to_json(MockResponse(error=TimeoutError("slow", phase="poll"))))
    assert type(mock.error) is TimeoutError
    assert mock.error.message == "slow"
    builtin = from_json(MockResponse, to_json(MockResponse(error=ValueError("bad value"))))
    assert type(builtin.error) is ValueError
    assert str(builtin.error) == "bad value"
    assert (
        to_dict(MockResponse(error=GenerationFailedError("boom")))["error"]["type"]
        == "tarash.tarash_gateway.exceptions.GenerationFailedError"
    )


def test_unserialisable_values_are_named() -> None:
    config = attrs.evolve(IMAGE_CONFIG, provider_config={"client": object()})
    with pytest.raises(ValidationError) as info:
        to_json(config)
    assert info.value.message == "Not serialisable: object @ $.provider_config.client"
    config = attrs.evolve(IMAGE_CONFIG, provider_config={"sizes": [1, {2: "two"}]})
    with pytest.raises(ValidationError) as info:
        to_json(config)
    assert info.value.message == "Not serialisable: non-string key 2 @ $.provider_config.sizes[1]"
    with pytest.raises(ValidationError) as info:
        to_dict({"plain": "dict"})
    assert info.value.message == "to_dict expects a Tarash record, got dict"


def test_data_to_store_leaves_media_bytes_out_and_refuses_what_json_cannot_hold() -> None:
    """``unstructure(..., media_limit=...)`` (what the ledger stores) in the same pass as the
    plain check and the scrub: media bytes become their size, a non-finite number is named."""

    picture = MediaContent(content=b"\x89PNG" + b"\x00" * 296, content_type="image/png")
    long_uri = "data:video/mp4;base64," + "A" * 2000
    request = VideoGenerationRequest(
        "x",
        image_list=[{"image": picture, "type": "first_frame"}],
        extra_params={"clip": long_uri, "thumb": "data:,short"},
    )
    stored = unstructure(request, media_limit=1024)
    assert stored["image_list"] == [
        {"image": {"content_type": "image/png", "size": 300, "stored": False}, "type": "first_frame"}
    ]
    assert stored["extra_params"] == {
        "clip": "data:video/mp4;base64,<1500 bytes not stored>",
        "thumb": "data:,short",
    }
    assert unstructure(request)["image_list"][0]["image"] == to_dict(picture)
    config = attrs.evolve(IMAGE_CONFIG, provider_config={"weights": [0.5, float("nan")]})
    assert math.isnan(unstructure(config)["provider_config"]["weights"][1])  # to_dict keeps it
    with pytest.raises(ValidationError) as info:
        unstructure(config, media_limit=1024)
    assert info.value.message == "Not serialisable: nan @ $.provider_config.weights[1]"


def test_capabilities_dict_is_exact() -> None:
    assert to_dict(Capabilities()) == {
        "cancel": False,
        "queue_position": False,
        "progress_percent": False,
        "logs": False,
        "webhooks": False,
        "idempotency_key": False,
        "resume": True,
    }


PROMPTS = st.text(min_size=1, max_size=50).filter(lambda s: "\x00" not in s)
MEDIA = st.one_of(
    st.sampled_from(("https://cdn.test/a.png", "data:image/png;base64,iVBORw0KGgo=")),
    st.builds(
        MediaContent,
        content=st.binary(max_size=64),
        content_type=st.sampled_from(("image/png", "image/jpeg")),
    ),
)
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    prompt=PROMPTS,
    duration=st.none() | st.integers(1, 60),
    aspect=st.none() | st.sampled_from(("16:9", "9:16", "1:1", "auto")),
    images=st.lists(
        st.builds(ImageType, image=MEDIA, type=st.sampled_from(("reference", "first_frame", "style"))),
        max_size=3,
    ),
    video=st.none() | MEDIA,
    seed=st.none() | st.integers(-(2**63), 2**63),
    extras=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(
            lambda k: k not in {a.name for a in attrs.fields(VideoGenerationRequest)}
        ),
        JSONISH,
        max_size=3,
    ),
)
def test_any_video_request_round_trips(
    prompt: str,
    duration: int | None,
    aspect: str | None,
    images: list[ImageType],
    video: Any,
    seed: int | None,
    extras: dict[str, Any],
) -> None:
    request = VideoGenerationRequest(
        prompt,
        duration_seconds=duration,
        aspect_ratio=aspect,
        image_list=images,
        video=video,
        seed=seed,
        **extras,
    )
    assert from_json(VideoGenerationRequest, to_json(request)) == request
