"""Fuzzed construction and generation: hostile values for every public constructor field.

Every property feeds arbitrary values (None, bools, huge and negative ints, nan/inf, empty, unicode,
NUL and very long strings, bytes, lists, tuples, sets, dicts with odd keys, deeply nested
structures, bare objects) mixed with valid ones, through the public API. The contract checked:

* construction either succeeds, and then every stored field holds a value of the documented type
  and range, or raises :class:`ValidationError` whose ``field`` names a field that was passed, in
  the validate phase; never ``KeyError``/``TypeError``/``ValueError``/``OverflowError``/...;
* a request that constructs generates successfully with the offline mock provider; a config or
  mock setup that constructs either generates or raises a typed :class:`TarashException`.

Each property counts its outcomes (the ``outcomes`` fixture; ``--junitxml`` reports show the counts)
and asserts that both "accepted" and "rejected" happened, so a validator that accepted everything
(or rejected everything) fails the suite.
"""

from __future__ import annotations

import builtins
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tarash.tarash_gateway import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    LedgerError,
    ProviderNotFoundError,
    TarashException,
    TimeoutError,
    ValidationError,
    _redact,
    generate_image,
    generate_image_async,
    generate_video,
    generate_video_async,
    serialization,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ImageType,
    MediaContent,
    MockConfig,
    MockPollingConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    iter_fallback_chain,
)

FUZZ = settings(max_examples=300, deadline=None)
FUZZ_E2E = settings(max_examples=200, deadline=None)

# ------------------------------------------------------------------------------------------------
# Hostile values
# ------------------------------------------------------------------------------------------------


class _Deep(list):  # type: ignore[type-arg]
    """A list nested 5000 deep (its ``repr`` raises RecursionError); Hypothesis prints it short."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<list nested 5000 deep>")


class _DeepDict(dict):  # type: ignore[type-arg]
    """A dict nested 5000 levels deep; Hypothesis prints it short."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<dict nested 5000 deep>")


class _HugeInt(int):
    """An int too long for ``repr`` (over 4300 digits); Hypothesis prints it short."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"<int of {self.bit_length()} bits>")


def _nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return _Deep(value)


def _nested_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return _DeepDict(value)


class _BadRepr:
    """An object whose repr and str raise (a hostile value for error messages)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<object whose repr raises>")


HUGE_INTS = (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**64 + 1, 10**400, -(10**400))
ODD_STRINGS = (
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "é",
    "🎬",
    "\u202e",
    "\ud800",
    "x" * 100_001,
    "9" * 5000,
    "²",
    "١٢",
    " 5 ",
    "-5",
    "1e3",
    "nan",
    "inf",
    "720p\n",
    "16:9\n",
    "١٦:٩",
    "None",
    "true",
    "{}",
    "[]",
    "５",  # noqa: RUF001 - non-ASCII digits on purpose
    "१०८०p",  # noqa: RUF001 - non-ASCII digits on purpose
)
OBJECTS = (
    object(),
    Ellipsis,
    NotImplemented,
    bytearray(b"\x00\xff"),
    memoryview(b"abc"),
    frozenset({1}),
    range(3),
    1j,
    b"\x00" * 10,
)
# Values whose repr raises (too many digits, too deep, hostile __repr__) are built by strategies and
# print themselves short, so Hypothesis can still describe strategies and failing examples.
DEEP = st.one_of(st.builds(_nested_list, st.just(5000)), st.builds(_nested_dict, st.just(5000)))
HOSTILE = st.one_of(
    st.sampled_from((4300, 5000)).map(lambda digits: _HugeInt(10**digits)), st.builds(_BadRepr)
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from((math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e308)),
    st.text(max_size=30),
    st.sampled_from(ODD_STRINGS),
    st.binary(max_size=20),
)
odd_keys = st.one_of(
    st.text(max_size=6),
    st.integers(),
    st.none(),
    st.booleans(),
    st.binary(max_size=3),
    st.tuples(st.integers()),
)
anything = (
    st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
            st.dictionaries(odd_keys, children, max_size=3),
            st.sets(st.integers(), max_size=3),
        ),
        max_leaves=10,
    )
    | st.sampled_from(OBJECTS)
    | HOSTILE
    | DEEP
)


def mixed(
    valid: st.SearchStrategy[Any], share: int = 1, junk: st.SearchStrategy[Any] = anything
) -> st.SearchStrategy[Any]:
    """Arbitrary (``junk``) or plausible values, ``share`` plausible draws per arbitrary one.

    (``st.one_of`` would flatten the many branches of ``junk`` and drown the plausible values.)
    """
    return st.integers(0, share).flatmap(lambda pick: valid if pick else junk)


def fuzzed(
    plausible: Mapping[str, st.SearchStrategy[Any]], share: int = 1, junk: st.SearchStrategy[Any] = anything
) -> dict[str, Any]:
    """Each field of a table, :func:`mixed`."""
    return {name: mixed(valid, share, junk) for name, valid in plausible.items()}


def short_text(**kwargs: Any) -> st.SearchStrategy[str]:
    return st.text(max_size=40, **kwargs)


URLS = st.sampled_from(
    (
        "https://cdn.example.invalid/a.png",
        "file:///tmp/x.mp4",
        "data:image/png;base64,iVBORw0KGgo=",
        "not a url but non-empty",
        " ",
        "\x00",
        "",
    )
)
MEDIA_DICTS = st.fixed_dictionaries(
    {"content": mixed(st.binary(max_size=8)), "content_type": mixed(st.just("image/png"))}
)
PNG = MediaContent(content=b"\x89PNG", content_type="image/png")
MEDIA = st.one_of(URLS, MEDIA_DICTS, st.just(PNG))
ROLES = st.sampled_from(("reference", "first_frame", "last_frame", "asset", "style", "REFERENCE", ""))
GOOD_ITEMS = st.one_of(
    st.fixed_dictionaries(
        {
            "image": st.sampled_from(
                (
                    "https://cdn.example.invalid/a.png",
                    PNG,
                    "data:image/png;base64,iVBORw0KGgo=",
                    {"content": b"\x89PNG", "content_type": "image/png"},
                )
            ),
            "type": st.sampled_from(("reference", "first_frame", "last_frame", "asset", "style")),
        }
    ),
    st.builds(ImageType, image=st.just("file:///tmp/x.png"), type=st.just("style")),
)
IMAGE_ITEMS = mixed(
    GOOD_ITEMS,
    1,
    st.one_of(
        st.fixed_dictionaries({}, optional={"image": mixed(MEDIA), "type": mixed(ROLES)}),
        st.dictionaries(st.sampled_from(("image", "type", "extra", "IMAGE")), mixed(MEDIA), max_size=3),
        anything,
    ),
)
IMAGE_LISTS = st.one_of(st.lists(IMAGE_ITEMS, max_size=3), st.tuples(IMAGE_ITEMS))

# ------------------------------------------------------------------------------------------------
# Field tables: every constructor field, with plausible values mixed into the arbitrary ones
# ------------------------------------------------------------------------------------------------

ints = st.integers(min_value=-5, max_value=20)
small_floats = st.floats(min_value=-1, max_value=20)


def _config_fields(cls: type[Any]) -> dict[str, st.SearchStrategy[Any]]:
    fallback = cls(model="mock", provider="mock", provider_config={"delay": 0.001})
    return {
        "model": st.one_of(
            st.sampled_from(("mock", "fal-ai/veo3", " ", "m" * 501)), st.text(min_size=1, max_size=20)
        ),
        "provider": st.one_of(
            st.sampled_from(("mock", "fal", "p" * 101, "\x00")), st.text(min_size=1, max_size=20)
        ),
        "api_key": st.sampled_from(("sk-fuzz-key-0001", "short", "")),
        "base_url": st.sampled_from(("https://api.example.invalid", "u" * 2001)),
        "api_version": st.sampled_from(("v1", "2024-01-01")),
        "timeout": st.one_of(small_floats, st.sampled_from((7 * 86400, 7 * 86400 + 1))),
        "max_poll_attempts": st.one_of(ints, st.sampled_from((10**7, 10**7 + 1, 3.0, "4"))),
        "poll_interval": st.one_of(small_floats, st.sampled_from((3600, 3600.5))),
        "mock": st.sampled_from((None, MockConfig(), MockConfig(enabled=False))),
        "fallback_configs": st.one_of(
            st.lists(st.just(fallback), max_size=2), st.tuples(st.just(fallback), anything)
        ),
        "provider_config": st.dictionaries(short_text(), anything, max_size=3),
    }


VIDEO_CONFIG_FIELDS = _config_fields(VideoGenerationConfig)
IMAGE_CONFIG_FIELDS = _config_fields(ImageGenerationConfig)

VIDEO_REQUEST_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt": short_text(),
    "duration_seconds": st.one_of(ints, st.sampled_from((3600, 3601, 4.0, 4.5, "8", " 6 "))),
    "resolution": st.sampled_from(("480p", "720p", "1080p", "4k", "9k", "12p", "1080P")),
    "aspect_ratio": st.sampled_from(("16:9", "9:16", "1:1", "auto", "0:0", "1:0", "100:1")),
    "generate_audio": st.booleans(),
    "image_list": IMAGE_LISTS,
    "video": MEDIA,
    "seed": st.one_of(st.integers(), st.sampled_from((2**64, -(2**63), "42", 7.0))),
    "number_of_videos": st.one_of(ints, st.sampled_from((16, 17, 2.0, "3"))),
    "negative_prompt": short_text(),
    "enhance_prompt": st.booleans(),
    "extra_params": st.dictionaries(short_text(), anything, max_size=3),
}

IMAGE_REQUEST_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt": short_text(),
    "negative_prompt": short_text(),
    "size": st.sampled_from(("64x64", "0x0", "4096x4096", "1x300", "5x", "x", "s" * 101)),
    "quality": st.sampled_from(("hd", "standard")),
    "style": st.sampled_from(("vivid", "natural")),
    "n": st.one_of(st.integers(min_value=-2, max_value=4), st.sampled_from((100, 101, 2.0, "2"))),
    "image_list": IMAGE_LISTS,
    "mask_image": MEDIA,
    "seed": st.one_of(st.integers(), st.sampled_from((2**64, "42", 7.0))),
    "aspect_ratio": st.sampled_from(("16:9", "1:1", "auto", "21:9", "1:99")),
    "extra_params": st.dictionaries(short_text(), anything, max_size=3),
}

VIDEO_RESPONSE = VideoGenerationResponse(request_id="r", video="https://cdn.example.invalid/v.mp4")
IMAGE_RESPONSE = ImageGenerationResponse(request_id="r", images=["https://cdn.example.invalid/i.png"])
INJECTED_ERRORS = (
    ValueError("boom"),
    KeyError("k"),
    RuntimeError("r"),
    builtins.TimeoutError("slow"),
    ConnectionError("reset"),
    HTTPError("busy", status_code=503),
    GenerationFailedError("failed"),
    ContentModerationError("refused"),
    ValidationError("bad", field="prompt"),
)

MOCK_RESPONSE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "weight": st.one_of(small_floats, st.sampled_from((1e12, 1e13, 1e308))),
    "mock_response": st.sampled_from((VIDEO_RESPONSE, IMAGE_RESPONSE)),
    "output_video": MEDIA,
    "output_video_type": st.sampled_from(("url", "content", "URL")),
    "output_images": st.lists(URLS, max_size=3),
    "error": st.sampled_from(INJECTED_ERRORS),
}
STATUSES = st.sampled_from(("queued", "processing", "completed", "failed", "cancelled", "done"))
MOCK_POLLING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "enabled": st.booleans(),
    "status_sequence": st.one_of(
        st.lists(STATUSES, max_size=4),
        st.lists(st.sampled_from(("queued", "processing")), max_size=3).map(lambda s: [*s, "completed"]),
    ),
    "delay_between_updates": st.floats(min_value=-1, max_value=0.002),
    "progress_percentages": st.lists(
        st.one_of(st.none(), st.floats(min_value=-10, max_value=110)), max_size=4
    ),
    "custom_updates": st.lists(st.dictionaries(short_text(), anything, max_size=2), max_size=4),
    "queue_positions": st.lists(st.one_of(st.none(), ints), max_size=4),
}
FAST_POLLING = MockPollingConfig(delay_between_updates=0.001)
NEVER_DONE = MockPollingConfig(status_sequence=("queued", "processing"), delay_between_updates=0)
PRESET_RESPONSES = (
    MockResponse(),
    MockResponse(output_video_type="content"),
    MockResponse(error=HTTPError("busy", status_code=503)),
    MockResponse(error=ValueError("boom")),
    MockResponse(output_video="https://cdn.example.invalid/v.mp4", output_video_type="content"),
    MockResponse(mock_response=IMAGE_RESPONSE),
    MockResponse(mock_response=VIDEO_RESPONSE),
)


def mock_config_fields(share: int) -> dict[str, st.SearchStrategy[Any]]:
    """Plausible MockConfig fields; nested responses and polling are fuzzed with ``share``."""
    return {
        "enabled": st.booleans(),
        "responses": st.one_of(
            st.lists(st.fixed_dictionaries({}, optional=fuzzed(MOCK_RESPONSE_FIELDS, share)), max_size=3),
            st.lists(st.sampled_from(PRESET_RESPONSES), max_size=2),
            st.lists(anything, max_size=2),
        ),
        "polling": st.one_of(
            st.fixed_dictionaries({}, optional=fuzzed(MOCK_POLLING_FIELDS, share)),
            st.sampled_from((FAST_POLLING, NEVER_DONE)),
        ),
        "seed": st.one_of(st.integers(), st.sampled_from(HUGE_INTS)),
    }


REQUIRED = ("model", "provider")


def kwargs_for(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The required fields and a random subset of the others, each with a fuzzed value."""
    return st.fixed_dictionaries(
        {k: s for k, s in fields.items() if k in REQUIRED},
        optional={k: s for k, s in fields.items() if k not in REQUIRED},
    )


# ------------------------------------------------------------------------------------------------
# Invariants of accepted objects
# ------------------------------------------------------------------------------------------------


def _is_real(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_text(value: Any, max_len: float = 100_000, nonempty: bool = False) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_len
        and "\x00" not in value
        and (not nonempty or bool(value.strip()))
    )


def _is_media(value: Any) -> bool:
    if isinstance(value, MediaContent):
        return isinstance(value.content, bytes) and _is_text(value.content_type, 200, nonempty=True)
    # no length cap: a data URI carries the whole file
    return _is_text(value, math.inf, nonempty=True)


def _is_str_mapping(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def check_config(config: Any) -> None:
    assert _is_text(config.model, 500, nonempty=True)
    assert _is_text(config.provider, 100, nonempty=True)
    assert config.api_key is None or isinstance(config.api_key, str)
    assert config.base_url is None or _is_text(config.base_url, 2000)
    assert config.api_version is None or _is_text(config.api_version, 100)
    assert _is_real(config.timeout)
    assert 0 < config.timeout <= 7 * 86400
    assert _is_int(config.max_poll_attempts, 1, 10**7)
    assert _is_real(config.poll_interval)
    assert 0 <= config.poll_interval <= 3600
    assert config.mock is None or isinstance(config.mock, MockConfig)
    assert config.fallback_configs is None or (
        isinstance(config.fallback_configs, tuple)
        and all(type(c) is type(config) for c in config.fallback_configs)
    )
    assert _is_str_mapping(config.provider_config)


_RESOLUTION = re.compile(r"(?:[0-9]{3,4}p|[1-8]k)")
_ASPECT = re.compile(r"(?:auto|[0-9]{1,2}:[0-9]{1,2})")


def _check_common_request(request: Any) -> None:
    assert _is_text(request.prompt)
    assert request.negative_prompt is None or _is_text(request.negative_prompt)
    assert isinstance(request.image_list, list)
    for item in request.image_list:
        assert isinstance(item, ImageType)
        assert _is_media(item.image)
        assert item.type in ("reference", "first_frame", "last_frame", "asset", "style")
    assert request.seed is None or _is_int(request.seed, -(2**63), 2**64)
    assert request.aspect_ratio is None or (
        isinstance(request.aspect_ratio, str) and _ASPECT.fullmatch(request.aspect_ratio)
    )
    assert _is_str_mapping(request.extra_params)


def check_video_request(request: VideoGenerationRequest) -> None:
    _check_common_request(request)
    assert request.duration_seconds is None or _is_int(request.duration_seconds, 1, 3600)
    assert request.resolution is None or (
        isinstance(request.resolution, str) and _RESOLUTION.fullmatch(request.resolution)
    )
    assert request.generate_audio in (None, True, False)
    assert request.video is None or _is_media(request.video)
    assert _is_int(request.number_of_videos, 1, 16)
    assert request.enhance_prompt in (None, True, False)


def check_image_request(request: ImageGenerationRequest) -> None:
    _check_common_request(request)
    for name, limit in (("size", 100), ("quality", 100), ("style", 200)):
        value = getattr(request, name)
        assert value is None or _is_text(value, limit)
    assert _is_int(request.n, 1, 100)
    assert request.mask_image is None or _is_media(request.mask_image)


def check_mock_response(response: MockResponse) -> None:
    assert _is_real(response.weight)
    assert response.weight > 0
    assert response.mock_response is None or isinstance(
        response.mock_response, (VideoGenerationResponse, ImageGenerationResponse)
    )
    assert response.output_video is None or _is_media(response.output_video)
    assert response.output_video_type in ("url", "content")
    assert response.output_images is None or (
        isinstance(response.output_images, tuple) and all(_is_media(i) for i in response.output_images)
    )
    assert response.error is None or isinstance(response.error, BaseException)


def check_polling(polling: MockPollingConfig) -> None:
    assert isinstance(polling.enabled, bool)
    assert isinstance(polling.status_sequence, tuple)
    assert polling.status_sequence
    assert set(polling.status_sequence) <= {"queued", "processing", "completed", "failed"}
    assert _is_real(polling.delay_between_updates)
    assert 0 <= polling.delay_between_updates <= 3600
    steps = len(polling.status_sequence)
    if polling.progress_percentages is not None:
        assert len(polling.progress_percentages) == steps
        assert all(p is None or (_is_real(p) and 0 <= p <= 100) for p in polling.progress_percentages)
    if polling.custom_updates is not None:
        assert len(polling.custom_updates) == steps
        assert all(_is_str_mapping(u) for u in polling.custom_updates)
    if polling.queue_positions is not None:
        assert all(p is None or _is_int(p, 0, 10**6000) for p in polling.queue_positions)


def check_mock_config(mock: MockConfig) -> None:
    assert isinstance(mock.enabled, bool)
    assert isinstance(mock.responses, tuple)
    assert mock.responses
    for response in mock.responses:
        assert isinstance(response, MockResponse)
        check_mock_response(response)
    assert mock.polling is None or isinstance(mock.polling, MockPollingConfig)
    if mock.polling is not None:
        check_polling(mock.polling)
    assert mock.seed is None or _is_int(mock.seed, -(10**6000), 10**6000)


# ------------------------------------------------------------------------------------------------
# The construction contract
# ------------------------------------------------------------------------------------------------

_FIELD_ROOT = re.compile(r"[a-z_]+")


def assert_names_a_given_field(exc: ValidationError, given: Mapping[str, Any]) -> None:
    """The error names one of the fields passed (defaults are valid), in the validate phase."""
    assert isinstance(exc.field, str), exc
    root = _FIELD_ROOT.match(exc.field)
    assert root is not None, exc.field
    assert root.group() in given, (exc.field, sorted(given))
    assert exc.phase == "validate"
    assert isinstance(exc.message, str)
    assert exc.message
    assert str(exc) == exc.message
    assert repr(exc).startswith("ValidationError(")


def construct(
    cls: Callable[..., Any],
    kwargs: dict[str, Any],
    outcomes: Counter[str],
    check: Callable[[Any], None],
    *,
    prompt_positional: bool = False,
) -> Any:
    """Build ``cls(**kwargs)``; count and check the outcome. Returns the object or None."""
    call_kwargs = dict(kwargs)
    try:
        if prompt_positional:
            obj = cls(call_kwargs.pop("prompt", "a cat"), **call_kwargs)
        else:
            obj = cls(**call_kwargs)
    except ValidationError as exc:
        assert_names_a_given_field(exc, {**kwargs, "prompt": None} if prompt_positional else kwargs)
        outcomes["rejected"] += 1
        return None
    check(obj)
    outcomes["accepted"] += 1
    return obj


def assert_both_outcomes(outcomes: Counter[str]) -> None:
    assert outcomes["accepted"] > 0, outcomes
    assert outcomes["rejected"] > 0, outcomes


@contextmanager
def isolated_secrets() -> Iterator[None]:
    """Fuzzed api keys are registered as secrets; forget them afterwards (no cross-test effects)."""
    known, pattern = set(_redact._known_secrets), _redact._secret_pattern
    try:
        yield
    finally:
        with _redact._lock:
            _redact._known_secrets.clear()
            _redact._known_secrets.update(known)
            _redact._secret_pattern = pattern


@pytest.fixture
def outcomes(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Outcome counts of the test's property (inputs tried, by result), kept in the test's
    ``user_properties`` (shown by ``--junitxml`` reports)."""
    counts: Counter[str] = Counter()
    yield counts
    request.node.user_properties.append(("outcomes", dict(counts)))


@pytest.fixture
def mock_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The mock writes generated PNGs under the temp dir: keep them in this test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("cls", "fields", "check"),
    [
        (VideoGenerationConfig, fuzzed(VIDEO_CONFIG_FIELDS, 2), check_config),
        (ImageGenerationConfig, fuzzed(IMAGE_CONFIG_FIELDS, 2), check_config),
        (MockResponse, fuzzed(MOCK_RESPONSE_FIELDS), check_mock_response),
        (MockPollingConfig, fuzzed(MOCK_POLLING_FIELDS), check_polling),
        (MockConfig, fuzzed(mock_config_fields(1)), check_mock_config),
    ],
    ids=["VideoGenerationConfig", "ImageGenerationConfig", "MockResponse", "MockPollingConfig", "MockConfig"],
)
def test_fuzzed_keyword_constructor(
    cls: type[Any], fields: dict[str, Any], check: Callable[[Any], None], outcomes: Counter[str]
) -> None:

    @FUZZ
    @given(kwargs=kwargs_for(fields))
    def prop(kwargs: dict[str, Any]) -> None:
        with isolated_secrets():
            construct(cls, kwargs, outcomes, check)

    prop()
    assert_both_outcomes(outcomes)


@pytest.mark.parametrize(
    ("cls", "fields", "check"),
    [
        (VideoGenerationRequest, fuzzed(VIDEO_REQUEST_FIELDS), check_video_request),
        (ImageGenerationRequest, fuzzed(IMAGE_REQUEST_FIELDS), check_image_request),
    ],
    ids=["VideoGenerationRequest", "ImageGenerationRequest"],
)
def test_fuzzed_request_constructor(
    cls: type[Any], fields: dict[str, Any], check: Callable[[Any], None], outcomes: Counter[str]
) -> None:

    @FUZZ
    @given(kwargs=kwargs_for(fields))
    def prop(kwargs: dict[str, Any]) -> None:
        construct(cls, kwargs, outcomes, check, prompt_positional=True)

    prop()
    assert_both_outcomes(outcomes)


def test_fuzzed_image_list_items(outcomes: Counter[str]) -> None:

    @FUZZ
    @given(items=st.lists(IMAGE_ITEMS, min_size=1, max_size=3))
    def prop(items: list[Any]) -> None:
        request = construct(
            VideoGenerationRequest,
            {"image_list": items},
            outcomes,
            check_video_request,
            prompt_positional=True,
        )
        if request is None:
            return
        assert len(request.image_list) == len(items)

    prop()
    assert_both_outcomes(outcomes)


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (ImageType, {"image": mixed(MEDIA), "type": mixed(ROLES)}),
        (
            MediaContent,
            {"content": mixed(st.binary(max_size=8)), "content_type": mixed(st.just("video/mp4"))},
        ),
    ],
    ids=["ImageType", "MediaContent"],
)
def test_fuzzed_media_records(cls: type[Any], fields: dict[str, Any], outcomes: Counter[str]) -> None:

    @FUZZ
    @given(values=st.fixed_dictionaries(fields))
    def prop(values: dict[str, Any]) -> None:
        obj = construct(cls, values, outcomes, lambda _obj: None)
        if isinstance(obj, ImageType):
            assert _is_media(obj.image)
            assert obj.type in ("reference", "first_frame", "last_frame", "asset", "style")
        elif isinstance(obj, MediaContent):
            assert _is_media(obj)

    prop()
    assert_both_outcomes(outcomes)


# ------------------------------------------------------------------------------------------------
# Unknown keyword arguments
# ------------------------------------------------------------------------------------------------


def _snapshot(mapping: Mapping[Any, Any]) -> list[tuple[Any, int]]:
    return [(k, id(v)) for k, v in mapping.items()]


@pytest.mark.parametrize("cls", [VideoGenerationRequest, ImageGenerationRequest], ids=lambda c: c.__name__)
def test_unknown_keywords_land_in_extra_params_without_mutating_the_callers_dicts(
    cls: type[Any],
    outcomes: Counter[str],
) -> None:
    known = {a.name for a in attrs.fields(cls)} | {"prompt"}

    @FUZZ
    @given(
        extras=st.dictionaries(st.text(max_size=12).filter(lambda k: k not in known), anything, max_size=4),
        given_extra=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), anything, max_size=3)),
    )
    def prop(extras: dict[str, Any], given_extra: dict[str, Any] | None) -> None:
        extras_before = _snapshot(extras)
        given_before = None if given_extra is None else _snapshot(given_extra)
        request = cls("a cat", extra_params=given_extra, **extras)
        assert request.extra_params == {**(given_extra or {}), **extras}
        assert request.extra_params is not given_extra
        assert _snapshot(extras) == extras_before
        request.extra_params["added-after"] = 1
        if given_extra is not None:
            assert _snapshot(given_extra) == given_before
            assert "added-after" not in given_extra
        outcomes["accepted"] += 1

    prop()
    assert outcomes["accepted"] == 300


def test_extra_params_that_is_not_a_mapping_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        VideoGenerationRequest("a cat", extra_params=["cfg", 1])
    assert info.value.field == "extra_params"
    with pytest.raises(ValidationError) as info:
        ImageGenerationRequest("a cat", extra_params={1: "x"}, cfg_scale=0.5)
    assert info.value.field == "extra_params"


# ------------------------------------------------------------------------------------------------
# Through generate_video / generate_image with the mock provider
# ------------------------------------------------------------------------------------------------

FAST_VIDEO = VideoGenerationConfig(model="mock", provider="mock", provider_config={"delay": 0.001})
FAST_IMAGE = ImageGenerationConfig(model="mock-image", provider="mock", provider_config={"delay": 0.001})


def mock_refuses(request: Any) -> str | None:
    """The field the mock, used by name, refuses: a ratio or size its models cannot produce."""
    ratio = request.aspect_ratio
    if isinstance(request, VideoGenerationRequest):
        return "aspect_ratio" if ratio not in (None, "16:9", "9:16", "1:1", "4:3", "21:9") else None
    if ratio not in (None, "auto") and 0 in (int(side) for side in ratio.split(":")):
        return "aspect_ratio"
    if request.size is None:
        return None
    sides = re.fullmatch(r"([0-9]{1,6})x([0-9]{1,6})", request.size.strip().lower())
    return None if sides and all(0 < int(side) <= 2048 for side in sides.groups()) else "size"


def ledger_refuses(value: Any) -> bool:
    """Whether the job ledger cannot record ``value`` (then, with the ledger on, nothing is sent)."""
    if attrs.has(type(value)) and hasattr(value, "fallback_configs"):
        value = attrs.evolve(value, fallback_configs=None)
    try:
        serialization.to_json(value)
    except (ValidationError, RecursionError, ValueError, TypeError):
        return True
    return False


def _plain_json(value: Any) -> bool:
    """Whether ``value`` holds only JSON values (finite numbers) and media: what core sends."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif (isinstance(item, float) and not math.isfinite(item)) or not (
            item is None or isinstance(item, (str, bool, int, float, MediaContent))
        ):
            return False
    return True


def core_refuses(request: Any) -> tuple[type[TarashException], str | None] | None:
    """What core refuses before the mock sees a request, in core's order: an empty or white-space
    prompt with nothing to work from, extra_params naming a unified field, text that UTF-8 cannot
    encode (ValidationError naming the field), then a request the ledger cannot record
    (LedgerError: with the ledger on, nothing goes out unrecorded)."""
    prompt = request.prompt
    media = bool(request.image_list) or getattr(request, "video", None) is not None
    if prompt.strip() == "" and (prompt != "" or not media):
        return ValidationError, "prompt"
    unified = {a.name for a in attrs.fields(type(request))} - {"extra_params"}
    clash = sorted(unified & set(request.extra_params))
    if clash:
        return ValidationError, f"extra_params.{clash[0]}"
    if not _plain_json(request.extra_params):
        return ValidationError, None
    try:
        serialization.to_json(request).encode("utf-8")
    except UnicodeEncodeError:
        return ValidationError, None
    except (ValidationError, RecursionError, ValueError, TypeError):
        return LedgerError, None
    refused = mock_refuses(request)
    return (ValidationError, refused) if refused is not None else None


def _assert_refused(expected: tuple[type[TarashException], str | None], run: Callable[[], Any]) -> None:
    kind, field = expected
    with pytest.raises(kind) as raised:
        run()
    if field is not None:
        assert getattr(raised.value, "field", None) == field


def test_fuzzed_video_requests_generate(mock_files: Path, outcomes: Counter[str]) -> None:

    @FUZZ_E2E
    @given(kwargs=kwargs_for(fuzzed(VIDEO_REQUEST_FIELDS, 6)))
    def prop(kwargs: dict[str, Any]) -> None:
        request = construct(
            VideoGenerationRequest, kwargs, outcomes, check_video_request, prompt_positional=True
        )
        if request is None:
            return
        updates: list[Any] = []
        refused = core_refuses(request)
        if refused is not None:
            _assert_refused(refused, lambda: generate_video(FAST_VIDEO, request))
            return
        response = generate_video(FAST_VIDEO, request, on_progress=updates.append)
        assert response.is_mock
        assert response.status == "completed"
        assert isinstance(response.video, str)
        assert response.video.startswith("file://")
        assert response.execution_metadata is not None
        assert response.execution_metadata.successful_attempt == 1
        assert [u.status for u in updates][-1] == "completed"

    prop()
    assert_both_outcomes(outcomes)


def test_fuzzed_image_requests_generate(mock_files: Path, outcomes: Counter[str]) -> None:

    @FUZZ_E2E
    @given(kwargs=kwargs_for(fuzzed(IMAGE_REQUEST_FIELDS, 6)))
    def prop(kwargs: dict[str, Any]) -> None:
        request = construct(
            ImageGenerationRequest, kwargs, outcomes, check_image_request, prompt_positional=True
        )
        if request is None:
            return
        refused = core_refuses(request)
        if refused is not None:
            _assert_refused(refused, lambda: generate_image(FAST_IMAGE, request))
            return
        response = generate_image(FAST_IMAGE, request)
        assert response.is_mock
        assert len(response.images) == request.n
        assert all(Path(url.removeprefix("file://")).is_file() for url in response.images)

    prop()
    assert_both_outcomes(outcomes)


def _fast_mock_fields() -> dict[str, st.SearchStrategy[Any]]:
    """Config fields for generation: provider mock (or unknown), fast polling, tiny delays."""
    slow = VideoGenerationConfig(model="m", provider="mock", timeout=1e-9)
    unknown = VideoGenerationConfig(model="m", provider="no-such-provider")
    return fuzzed(
        {
            **VIDEO_CONFIG_FIELDS,
            "provider": st.sampled_from(("mock", "mock", "no-such-provider")),
            "mock": st.sampled_from((None, MockConfig(polling=FAST_POLLING), MockConfig(enabled=False))),
            "fallback_configs": st.lists(st.sampled_from((FAST_VIDEO, slow, unknown)), max_size=3),
            "provider_config": st.dictionaries(
                short_text().filter(lambda k: k != "delay"), anything, max_size=3
            ).map(lambda d: {**d, "delay": 0.001}),
        },
        3,
    )


def outcome_of(config: Any, request: Any) -> Any:
    """The response, or the typed error the generation raised (anything else propagates)."""
    generate = generate_video if isinstance(config, VideoGenerationConfig) else generate_image
    try:
        return generate(config, request)
    except TarashException as exc:
        return exc


def test_fuzzed_configs_generate_or_raise_typed_errors(outcomes: Counter[str]) -> None:
    fields = _fast_mock_fields()
    defaults = {"model": "mock", "provider": "mock", "provider_config": {"delay": 0.001}}

    @FUZZ_E2E
    @given(kwargs=kwargs_for(fields))
    def prop(kwargs: dict[str, Any]) -> None:
        with isolated_secrets():
            config = construct(VideoGenerationConfig, {**defaults, **kwargs}, outcomes, check_config)
            if config is None:
                return
            result = outcome_of(config, VideoGenerationRequest("a cat"))
        if isinstance(result, LedgerError):
            assert ledger_refuses(config), repr(result)
            outcomes["typed error"] += 1
            return
        if isinstance(result, TarashException):
            assert isinstance(result, (ProviderNotFoundError, TimeoutError)), repr(result)
            assert result.execution_metadata is not None
            assert result.execution_metadata.attempts
            assert result.execution_metadata.successful_attempt is None
            if isinstance(result, ProviderNotFoundError):
                assert result.field == "provider"
                assert result.value in {c.provider for c in iter_fallback_chain(config)} - {"mock"}
            outcomes["typed error"] += 1
            return
        assert result.is_mock
        assert result.provider == "mock"
        outcomes["generated"] += 1

    prop()
    assert_both_outcomes(outcomes)
    assert outcomes["generated"] > 0, outcomes
    assert outcomes["typed error"] > 0, outcomes


def _fast(mock: MockConfig) -> MockConfig:
    """Clamp the simulated delay so a fuzzed mock setup finishes in milliseconds."""
    if mock.polling is None or mock.polling.delay_between_updates <= 0.002:
        return mock
    return attrs.evolve(mock, polling=attrs.evolve(mock.polling, delay_between_updates=0.001))


def _must_succeed(mock: MockConfig, max_polls: int) -> bool:
    """Plain outcomes only, and a simulated queue that reaches "completed" within ``max_polls``."""
    plain = all(
        r.error is None
        and r.mock_response is None
        and r.output_video is None
        and not r.output_images
        and r.output_video_type == "url"
        for r in mock.responses
    )
    polling = mock.polling
    if polling is None or not polling.enabled:
        return plain
    terminal = [s for s in polling.status_sequence if s in ("completed", "failed")]
    return (
        plain
        and bool(terminal)
        and terminal[0] == "completed"
        and polling.status_sequence.index("completed") < max_polls
    )


def test_fuzzed_mock_setups_generate_or_raise_typed_errors(mock_files: Path, outcomes: Counter[str]) -> None:

    @FUZZ_E2E
    @given(kwargs=kwargs_for(fuzzed(mock_config_fields(3), 3)), modality=st.sampled_from(("video", "image")))
    @example(kwargs={}, modality="video")
    @example(kwargs={"responses": [{"error": ValueError("boom")}]}, modality="image")
    def prop(kwargs: dict[str, Any], modality: str) -> None:
        mock = construct(MockConfig, kwargs, outcomes, check_mock_config)
        if mock is None:
            return
        mock = _fast(mock)
        config: Any
        if modality == "video":
            config = VideoGenerationConfig(
                model="mock", provider="mock", mock=mock, max_poll_attempts=20, timeout=10
            )
            result = outcome_of(config, VideoGenerationRequest("a cat"))
        else:
            config = ImageGenerationConfig(
                model="mock-image", provider="mock", mock=mock, max_poll_attempts=20, timeout=10
            )
            result = outcome_of(config, ImageGenerationRequest("a cat"))
        if isinstance(result, TarashException):
            assert not _must_succeed(mock, 20) or ledger_refuses(config), repr(result)
            assert result.execution_metadata is not None
            outcomes["typed error"] += 1
            return
        assert result.is_mock
        if modality == "image":
            assert result.images
        else:
            assert isinstance(result.video, (str, MediaContent))
        outcomes["generated"] += 1

    prop()
    assert_both_outcomes(outcomes)
    assert outcomes["generated"] > 0, outcomes
    assert outcomes["typed error"] > 0, outcomes


async def test_fuzzed_requests_through_the_async_api(mock_files: Path, outcomes: Counter[str]) -> None:
    requests: list[Any] = []

    @settings(max_examples=200, deadline=None)
    @given(
        video=kwargs_for(fuzzed(VIDEO_REQUEST_FIELDS, 6)), image=kwargs_for(fuzzed(IMAGE_REQUEST_FIELDS, 6))
    )
    def prop(video: dict[str, Any], image: dict[str, Any]) -> None:
        requests.append(
            construct(VideoGenerationRequest, video, outcomes, check_video_request, prompt_positional=True)
        )
        requests.append(
            construct(ImageGenerationRequest, image, outcomes, check_image_request, prompt_positional=True)
        )

    prop()
    assert_both_outcomes(outcomes)
    accepted = [r for r in requests if r is not None][:40]
    for request in accepted:
        video = isinstance(request, VideoGenerationRequest)
        refused = core_refuses(request)
        if refused is not None:
            with pytest.raises(refused[0]):
                await (
                    generate_video_async(FAST_VIDEO, request)
                    if video
                    else generate_image_async(FAST_IMAGE, request)
                )
            outcomes["refused by the mock"] += 1
            continue
        if video:
            assert (await generate_video_async(FAST_VIDEO, request)).is_mock
        else:
            assert len((await generate_image_async(FAST_IMAGE, request)).images) == request.n
        outcomes["generated"] += 1
    assert outcomes["generated"] + outcomes["refused by the mock"] == len(accepted) == 40


def test_deeply_nested_values_are_refused_unrecorded_or_generate_with_the_ledger_off(
    mock_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fuzzer: the job ledger overflowed the stack recording this request. With the
    ledger on, a request it cannot record is not sent (LedgerError); off, it generates."""
    request = VideoGenerationRequest("a cat", extra_params={"deep": _nested_list(5000)}, huge=10**5000)
    config = attrs.evolve(FAST_VIDEO, provider_config={"delay": 0.001, "deep": _nested_dict(5000)})
    with pytest.raises(LedgerError) as raised:
        generate_video(config, request)
    assert raised.value.message.startswith("The job ledger cannot record this config")
    monkeypatch.setenv("TARASH_LEDGER", "off")
    assert generate_video(config, request).is_mock


def test_generate_rejects_arbitrary_config_and_request_objects(outcomes: Counter[str]) -> None:

    @FUZZ
    @given(
        config=mixed(st.sampled_from((FAST_VIDEO, FAST_IMAGE))),
        request=mixed(st.sampled_from((VideoGenerationRequest("a"), ImageGenerationRequest("a")))),
        modality=st.sampled_from(("video", "image")),
    )
    def prop(config: Any, request: Any, modality: str) -> None:
        generate = generate_video if modality == "video" else generate_image
        expected = (
            (VideoGenerationConfig, VideoGenerationRequest)
            if modality == "video"
            else (ImageGenerationConfig, ImageGenerationRequest)
        )
        if isinstance(config, expected[0]) and isinstance(request, expected[1]):
            outcomes["valid pair"] += 1
            return
        with pytest.raises(ValidationError) as info:
            generate(config, request)
        assert info.value.field == ("request" if isinstance(config, expected[0]) else "config")
        outcomes[info.value.field] += 1

    prop()
    assert outcomes["config"] > 0, outcomes
    assert outcomes["request"] > 0, outcomes


# ------------------------------------------------------------------------------------------------
# Regressions found by the fuzzer (exact inputs)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: VideoGenerationRequest("a", duration_seconds="²"), "duration_seconds"),
        (lambda: VideoGenerationRequest("a", duration_seconds="9" * 5000), "duration_seconds"),
        (lambda: VideoGenerationRequest("a", seed=10**5000), "seed"),
        (lambda: VideoGenerationRequest("a", seed=_nested_list(5000)), "seed"),
        (lambda: VideoGenerationRequest("a", seed=_BadRepr()), "seed"),
        (lambda: VideoGenerationRequest("a", number_of_videos="١٢"), "number_of_videos"),
        (lambda: VideoGenerationRequest("a", resolution="720p\n"), "resolution"),
        (lambda: VideoGenerationRequest("a", aspect_ratio="١٦:٩"), "aspect_ratio"),
        (lambda: VideoGenerationRequest("a", video={"content": "x", "content_type": "video/mp4"}), "video"),
        (
            lambda: ImageGenerationRequest(
                "a",
                image_list=[{"image": {"content": 1, "content_type": "a/b"}, "type": "reference"}],
            ),
            "image_list[0].image",
        ),
        (lambda: MediaContent(content="not bytes", content_type="image/png"), "content"),
        (lambda: MockConfig(responses=[{"nope": 1}]), "responses[0]"),
        (lambda: MockConfig(responses=[{"weight": -1}]), "responses[0].weight"),
        (lambda: MockConfig(responses=[1]), "responses[0]"),
        (lambda: MockConfig(responses="abc"), "responses"),
        (lambda: MockConfig(polling=5), "polling"),
        (lambda: MockConfig(polling={1: 2}), "polling"),
        (lambda: MockConfig(polling={"delay_between_updates": -1}), "polling.delay_between_updates"),
        (lambda: MockPollingConfig(status_sequence=None), "status_sequence"),
        (lambda: MockPollingConfig(status_sequence=[]), "status_sequence"),
        (lambda: MockPollingConfig(status_sequence="completed"), "status_sequence"),
        (
            lambda: MockPollingConfig(status_sequence=["completed"], progress_percentages=5),
            "progress_percentages",
        ),
        (
            lambda: MockPollingConfig(status_sequence=["completed"], progress_percentages=["x"]),
            "progress_percentages[0]",
        ),
        (
            lambda: MockPollingConfig(status_sequence=["completed"], progress_percentages=[math.nan]),
            "progress_percentages[0]",
        ),
        (lambda: MockPollingConfig(status_sequence=["completed"], custom_updates=[5]), "custom_updates[0]"),
        (lambda: MockPollingConfig(queue_positions=["first"]), "queue_positions[0]"),
        (lambda: MockPollingConfig(status_sequence=["queued", "done"]), "status_sequence[1]"),
        (lambda: MockPollingConfig(delay_between_updates=10**4300), "delay_between_updates"),
        (lambda: MockResponse(output_images=5), "output_images"),
        (lambda: MockResponse(output_images="https://a.example.invalid/x.png"), "output_images"),
        (lambda: MockResponse(output_video=5), "output_video"),
        (lambda: MockResponse(mock_response={"video": "x"}), "mock_response"),
        (lambda: MockResponse(weight=1e308), "weight"),
    ],
)
def test_regressions_raise_validation_error_naming_the_field(build: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field
    assert info.value.phase == "validate"


def _chain_of(length: int) -> VideoGenerationConfig:
    config = FAST_VIDEO
    for _ in range(length - 1):
        config = attrs.evolve(FAST_VIDEO, fallback_configs=[config])
    return config


def test_fallback_chains_are_capped_instead_of_overflowing_the_stack() -> None:
    """Found by fuzzing: a chain nested ~1000 deep made generation and repr raise RecursionError."""
    longest = _chain_of(64)
    response = generate_video(longest, VideoGenerationRequest("a cat"))
    assert response.execution_metadata is not None
    assert response.execution_metadata.configs_in_chain == 64
    with pytest.raises(ValidationError) as info:
        attrs.evolve(FAST_VIDEO, fallback_configs=[longest])
    assert info.value.field == "fallback_configs"
    assert info.value.message == (
        "VideoGenerationConfig.fallback_configs: expected at most 64 configs in the fallback "
        "chain, got '<65 configs>'"
    )
    with pytest.raises(ValidationError) as info:
        attrs.evolve(FAST_VIDEO, fallback_configs=[FAST_VIDEO] * 64)
    assert info.value.field == "fallback_configs"


def test_valid_edge_values_are_accepted() -> None:
    request = VideoGenerationRequest(
        "",
        duration_seconds=" 8 ",
        seed=2**64,
        number_of_videos=16.0,
        resolution="4k",
        aspect_ratio="auto",
        image_list=({"image": {"content": b"", "content_type": "image/png"}, "type": "last_frame"},),
    )
    assert (request.duration_seconds, request.seed, request.number_of_videos) == (8, 2**64, 16)
    assert request.image_list[0].image == MediaContent(content=b"", content_type="image/png")
    config = VideoGenerationConfig(
        model="m", provider="mock", timeout=7 * 86400, poll_interval=5e-324, max_poll_attempts=10**7
    )
    assert config.poll_interval == 5e-324
    polling = MockPollingConfig(
        status_sequence=["queued", "completed"],
        progress_percentages=[0, 100],
        queue_positions=[3, None],
        custom_updates=[{}, {"eta": 1}],
    )
    assert polling.progress_percentages == (0, 100)
