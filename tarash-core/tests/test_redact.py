"""Redaction primitives: ``redact``, ``redact_text``, ``cap_raw_response`` and the log filter."""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarash.tarash_gateway import _redact
from tarash.tarash_gateway._redact import (
    MAX_DEPTH,
    MAX_RAW_ITEMS,
    MAX_RAW_TEXT,
    REDACTED,
    RedactingFilter,
    cap_raw_response,
    get_logger,
    is_secret_key,
    redact,
    redact_text,
    register_secret,
)

SECRET = "sk-REDACT-TEST-0123456789"
PROPERTY = settings(max_examples=300, deadline=None)


@pytest.fixture(autouse=True)
def _secret_registry() -> Iterator[None]:
    """Register SECRET for each test and forget anything a test registers on top of it."""
    known, pattern = set(_redact._known_secrets), _redact._secret_pattern
    register_secret(SECRET)
    yield
    with _redact._lock:
        _redact._known_secrets.clear()
        _redact._known_secrets.update(known)
        _redact._secret_pattern = pattern


# ------------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "API_KEY",
        "Authorization",
        "AUTHORIZATION",
        "authorization",
        "X-Api-Key",
        "x-api-key",
        "X-API-KEY",
        "x-fal-key",
        "X-Fal-Key",
        "X-Goog-Api-Key",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "password",
        "signature",
        "OPENAI_API_KEY",
        "replicate-api-key",
        "webhook_secret",
        "session_token",
        " Authorization ",
    ],
)
def test_credential_key_names_in_any_case_are_secret(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "value-123"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority",
        "max_tokens",
        "total_tokens",
        "tokenizer",
        "token_count",
        "keywords",
        "keyframes",
        "monkey",
        "passage",
        "secretary",
        "signature_version_note",
        "prompt",
        "url",
        "headers",
        "",
        42,
        None,
    ],
)
def test_ordinary_key_names_are_not_secret(key: Any) -> None:
    assert not is_secret_key(key)
    assert redact({key: "value-123"}) == {key: "value-123"}


def test_redaction_reaches_any_depth_of_dicts_lists_and_tuples() -> None:
    payload = {
        "request": {
            "headers": {"Authorization": "Key abc", "Content-Type": "application/json"},
            "url": "https://api.example.invalid/v1/run?key=abc123&mode=fast",
        },
        "attempts": [{"x-fal-key": "k1"}, ({"token": "t1"}, "plain")],
        "echo": [f"invalid key {SECRET}"],
    }
    assert redact(payload) == {
        "request": {
            "headers": {"Authorization": REDACTED, "Content-Type": "application/json"},
            "url": f"https://api.example.invalid/v1/run?key={REDACTED}&mode=fast",
        },
        "attempts": [{"x-fal-key": REDACTED}, ({"token": REDACTED}, "plain")],
        "echo": [f"invalid key {REDACTED}"],
    }


def test_known_secrets_are_scrubbed_from_keys_too() -> None:
    assert redact({SECRET: 1, f"https://h.example.invalid/?key={SECRET}": [SECRET]}) == {
        REDACTED: 1,
        f"https://h.example.invalid/?key={REDACTED}": [REDACTED],
    }


def test_redact_returns_a_copy_and_leaves_the_input_alone() -> None:
    headers = {"Authorization": "Bearer abc123def456"}
    payload = {"headers": headers, "items": [1, 2]}
    result = redact(payload)
    assert headers == {"Authorization": "Bearer abc123def456"}
    assert result["headers"] is not headers
    assert result["items"] is not payload["items"]


def test_empty_credentials_are_kept_so_absence_stays_visible() -> None:
    assert redact({"api_key": None, "token": "", "password": 0}) == {
        "api_key": None,
        "token": "",
        "password": REDACTED,
    }


def test_bytes_become_sizes_and_objects_their_scrubbed_repr() -> None:
    class Leaky:
        def __repr__(self) -> str:
            return f"Leaky(key={SECRET})"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert redact({"video": b"\x00" * 1000, "frame": bytearray(3), "view": memoryview(b"ab")}) == {
        "video": "<1000 bytes>",
        "frame": "<3 bytes>",
        "view": "<2 bytes>",
    }
    assert redact(Leaky()) == f"Leaky(key={REDACTED})"
    assert redact(Broken()) == "<Broken>"
    assert redact({1, 2}) in ([1, 2], [2, 1])
    assert redact((1.5, None, True)) == (1.5, None, True)


def test_depth_limit_replaces_what_is_nested_too_deep() -> None:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(MAX_DEPTH + 5):
        value = {"a": value}
    result = redact(value)
    for _ in range(MAX_DEPTH):
        result = result["a"]
    assert result == {"a": "<nested too deep>"}


def test_self_referencing_structures_terminate() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    result = redact(loop)
    depth = 0
    while isinstance(result, dict):
        result, depth = result["self"], depth + 1
    assert (result, depth) == ("<nested too deep>", MAX_DEPTH + 1)


# ------------------------------------------------------------------------------------------------
# Free text
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123def456", f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer eyJhbGciOi.J9x1.sig", f"authorization: bearer {REDACTED}"),
        ("Authorization: Key 1a2b3c4d:5e6f7a8b", f"Authorization: Key {REDACTED}"),
        ("header was Basic dXNlcjpwYXNzd29yZA==", f"header was Basic {REDACTED}"),
        ("Token abcdefghijklmnopqrstuvwxyz", f"Token {REDACTED}"),
        (
            "GET https://h.example.invalid/v?key=abc&x=1",
            f"GET https://h.example.invalid/v?key={REDACTED}&x=1",
        ),
        ("/v1?a=1&token=t0k3n#frag", f"/v1?a=1&token={REDACTED}#frag"),
        (
            "s3?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA/1",
            f"s3?X-Amz-Signature={REDACTED}&X-Amz-Credential={REDACTED}",
        ),
        ("?signature=abc&sig=def", f"?signature={REDACTED}&sig={REDACTED}"),
        ("?API_KEY=abc&access_token=def", f"?API_KEY={REDACTED}&access_token={REDACTED}"),
        (
            "POST https://user:s3cr3t@proxy.example.invalid:8080/v1 failed",
            f"POST https://{REDACTED}@proxy.example.invalid:8080/v1 failed",
        ),
        (
            "base_url='https://ghp_token@h.example.invalid'",
            f"base_url='https://{REDACTED}@h.example.invalid'",
        ),
        (
            "socks5h://u:p@127.0.0.1:1080 and HTTP://a@b",
            f"socks5h://{REDACTED}@127.0.0.1:1080 and HTTP://{REDACTED}@b",
        ),
        (f"provider said: invalid key {SECRET}!", f"provider said: invalid key {REDACTED}!"),
        (f"prefix{SECRET}suffix", f"prefix{REDACTED}suffix"),
    ],
)
def test_redact_text_scrubs_auth_values_query_parameters_and_known_secrets(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The key difference is the author's authorization model.",
        "Basic authentication failed; see the Bearer documentation.",
        "Key takeaways: tokenizer limits and max_tokens matter.",
        "https://cdn.example.invalid/v.mp4?monkey=1&max_tokens=100&author=me&keyframe=2",
        "token limits exceeded for prompt tokens",
        "signature_version=4 and keyframes=12",
        "mail support@example.invalid or see https://example.invalid/path/@handle?who=a@b",
    ],
)
def test_ordinary_prose_and_parameters_are_not_over_redacted(text: str) -> None:
    assert redact_text(text) == text


def test_redact_text_is_idempotent_on_its_own_output() -> None:
    once = redact_text(f"Bearer abc123def456 ?key=x {SECRET}")
    assert redact_text(once) == once
    assert once == f"Bearer {REDACTED} ?key={REDACTED} {REDACTED}"


# ------------------------------------------------------------------------------------------------
# Registered secrets
# ------------------------------------------------------------------------------------------------


def test_short_blank_and_non_string_secrets_are_not_registered() -> None:
    before = set(_redact._known_secrets)
    for value in ("", "abc", "abcde", "      ", " \t\n  \t ", None, 123456789):
        register_secret(value)  # type: ignore[arg-type]
    assert _redact._known_secrets == before
    assert redact_text("abcde and       spaces") == "abcde and       spaces"


def test_the_longest_overlapping_secret_wins_and_special_characters_are_literal() -> None:
    register_secret("abcdef123")
    register_secret("abcdef123456")
    register_secret("a+b(c)*d?e|f")
    assert redact_text("x abcdef123456 y abcdef123 z") == f"x {REDACTED} y {REDACTED} z"
    assert redact_text("q a+b(c)*d?e|f r aXbcd") == f"q {REDACTED} r aXbcd"


def test_registering_the_same_secret_twice_keeps_one_entry() -> None:
    register_secret("repeat-secret-1")
    count = len(_redact._known_secrets)
    register_secret("repeat-secret-1")
    assert len(_redact._known_secrets) == count


# ------------------------------------------------------------------------------------------------
# Raw responses
# ------------------------------------------------------------------------------------------------


def test_cap_raw_response_truncates_long_text() -> None:
    capped = cap_raw_response({"body": "x" * (MAX_RAW_TEXT + 10)})
    assert capped == {"body": "x" * MAX_RAW_TEXT + "... [10 more characters]"}


def test_cap_raw_response_caps_keys_and_items_at_any_depth() -> None:
    many_keys = {f"k{i}": i for i in range(MAX_RAW_ITEMS + 50)}
    many_items = list(range(MAX_RAW_ITEMS + 7))
    capped = cap_raw_response({"outer": {"keys": many_keys, "items": many_items}})
    keys, items = capped["outer"]["keys"], capped["outer"]["items"]
    assert len(keys) == MAX_RAW_ITEMS + 1
    assert keys["..."] == "50 more keys"
    assert keys["k199"] == 199
    assert "k200" not in keys
    assert items == [*range(MAX_RAW_ITEMS), "... 7 more items"]


def test_cap_raw_response_redacts_before_capping() -> None:
    raw = {
        "headers": {"X-Api-Key": "k" * 10_000},
        "log": f"{SECRET} " + "y" * 10_000,
        "video": b"\x00" * 5_000_000,
    }
    capped = cap_raw_response(raw)
    assert capped["headers"] == {"X-Api-Key": REDACTED}
    assert capped["log"].startswith(f"{REDACTED} yyy")
    more = len(REDACTED) + 1 + 10_000 - MAX_RAW_TEXT
    assert capped["log"].endswith(f"... [{more} more characters]")
    assert capped["video"] == "<5000000 bytes>"


def test_cap_raw_response_keeps_none_and_small_values() -> None:
    assert cap_raw_response(None) is None
    assert cap_raw_response({"ok": True, "n": [1, 2.5, None]}) == {"ok": True, "n": [1, 2.5, None]}
    assert cap_raw_response("short text") == "short text"


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def leaky_log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger="tarash")
    return get_logger("tarash.test.redact")


def test_log_messages_and_arguments_are_scrubbed(
    leaky_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    leaky_log.debug("calling with %s", SECRET)
    leaky_log.debug("Authorization: Bearer %s", "abc123def456")
    leaky_log.info("headers %s", {"X-Api-Key": "zzz", "Accept": "video/mp4"})
    leaky_log.info("%(url)s", {"url": "https://h.example.invalid/?token=abc"})
    leaky_log.warning({"api_key": "plain-dict-message"})
    assert [r.getMessage() for r in caplog.records] == [
        f"calling with {REDACTED}",
        f"Authorization: Bearer {REDACTED}",
        f"headers {{'X-Api-Key': '{REDACTED}', 'Accept': 'video/mp4'}}",
        f"https://h.example.invalid/?token={REDACTED}",
        f"{{'api_key': '{REDACTED}'}}",
    ]
    for text in ("abc123def456", "zzz", "plain-dict-message", SECRET):
        assert text not in caplog.text


def test_tracebacks_in_log_records_are_scrubbed(
    leaky_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        try:
            raise ConnectionError(f"reset while sending key {SECRET}")
        except ConnectionError as inner:
            raise RuntimeError("provider call failed ?key=querysecret") from inner
    except RuntimeError:
        leaky_log.exception("generation failed")
    (record,) = caplog.records
    assert record.exc_text is not None
    assert "RuntimeError: provider call failed ?key=" in record.exc_text
    assert f"ConnectionError: reset while sending key {REDACTED}" in record.exc_text
    assert SECRET not in caplog.text
    assert "querysecret" not in caplog.text


def test_objects_keep_their_formatting_unless_they_show_a_secret(
    leaky_log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Clean:
        def __repr__(self) -> str:
            return "<Clean 1>"

    class Leaky:
        def __str__(self) -> str:
            return f"Leaky({SECRET})"

    error = ValueError("plain failure")
    leaky_log.info("%r and %s and %s and %d%%", Clean(), error, Leaky(), 7)
    assert caplog.records[0].getMessage() == (f"<Clean 1> and plain failure and Leaky({REDACTED}) and 7%")


def test_context_attribute_is_redacted(leaky_log: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    leaky_log.info("submitted", extra={"context": {"headers": {"Authorization": "Key a1b2c3d4"}}})
    assert caplog.records[0].context == {"headers": {"Authorization": REDACTED}}  # type: ignore[attr-defined]


def test_filter_survives_a_malformed_format_string() -> None:
    record = logging.LogRecord("tarash.x", logging.INFO, __file__, 1, f"%d {SECRET}", ("nan",), None)
    assert RedactingFilter().filter(record) is True
    assert record.msg == f"%d {REDACTED}"
    assert record.args == ("nan",)


def test_get_logger_installs_one_filter() -> None:
    first = get_logger("tarash.test.once")
    second = get_logger("tarash.test.once")
    assert first is second
    assert sum(isinstance(f, RedactingFilter) for f in first.filters) == 1


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=10),
)
json_like = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _plant(value: Any, secret: str, data: st.DataObject) -> Any:
    """Put ``secret`` into every string of ``value`` at a drawn position, and into some keys."""
    if isinstance(value, str):
        cut = data.draw(st.integers(0, len(value)))
        return value[:cut] + secret + value[cut:]
    if isinstance(value, list):
        return [_plant(v, secret, data) for v in value]
    if isinstance(value, dict):
        return {
            (_plant(k, secret, data) if data.draw(st.booleans()) else k): _plant(v, secret, data)
            for k, v in value.items()
        }
    return value


@PROPERTY
@given(value=json_like, data=st.data())
def test_a_registered_secret_never_survives_redaction(value: Any, data: st.DataObject) -> None:
    planted = {"payload": _plant(value, SECRET, data), "echo": SECRET}
    result = redact(planted)
    assert SECRET not in repr(result)
    assert SECRET not in repr(cap_raw_response(planted))
    assert repr(redact(result)) == repr(result)


words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=20)
separators = st.sampled_from((" ", ", ", ". ", ": ", "\n", " - ", "; "))


@PROPERTY
@given(parts=st.lists(st.tuples(words, separators), max_size=30))
def test_prose_of_plain_words_is_never_redacted(parts: list[tuple[str, str]]) -> None:
    text = "".join(word + sep for word, sep in parts)
    assert redact_text(text) == text


@PROPERTY
@given(
    value=st.dictionaries(
        words.filter(lambda k: not is_secret_key(k)),
        st.one_of(st.integers(), st.booleans(), st.none(), words),
        max_size=8,
    )
)
def test_payloads_without_credentials_come_back_equal(value: dict[str, Any]) -> None:
    assert redact(value) == value
    assert cap_raw_response(value) == value


def test_a_token_in_the_webhook_url_stays_out_of_the_configs_repr() -> None:
    from tarash.tarash_gateway.models import VideoGenerationConfig

    config = VideoGenerationConfig(
        provider="fal", model="fal-ai/veo3", webhook_url="https://app.example/hook?token=s3cr3t-hook"
    )
    assert "s3cr3t-hook" not in repr(config)
    assert config.webhook_url == "https://app.example/hook?token=s3cr3t-hook"
