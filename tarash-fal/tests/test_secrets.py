"""The API key never shows in exceptions, reprs, raw responses, progress updates or logs."""

from __future__ import annotations

import logging
import traceback

import pytest

from tarash.tarash_gateway import (
    HTTPError,
    ValidationError,
    VideoGenerationRequest,
    generate_video,
)

REQUEST = VideoGenerationRequest(prompt="a cat")


def _chain(error: BaseException) -> list[BaseException]:
    """The exceptions a traceback of ``error`` shows (causes, and contexts not suppressed)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def _texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    for item in _chain(error):
        texts += [
            str(item),
            repr(item),
            repr(getattr(item, "raw_response", None)),
            repr(getattr(item, "execution_metadata", None)),
        ]
    return texts


def test_config_key_echoed_by_fal_never_leaks(make_server, caplog: pytest.LogCaptureFixture) -> None:
    secret = "fal-sk-4c1d-9f8e7d6c5b4a-CONFIGSECRET"
    server = make_server(api_key=secret)
    caplog.set_level(logging.DEBUG)
    server.inject(
        "status",
        status_code=500,
        retry_after=0,
        body={"detail": f"upstream rejected Key {secret}", "key": secret},
    )
    server.inject(
        "result",
        status_code=422,
        body={"detail": [{"loc": ["body", "prompt"], "msg": f"bad token {secret}", "type": "value_error"}]},
    )
    updates: list = []
    config = server.video_config()
    with pytest.raises(ValidationError) as caught:
        generate_video(config, REQUEST, on_progress=updates.append)
    assert caught.value.message == "fal rejected the input: prompt: bad token ***REDACTED***"
    texts = [*_texts(caught.value), caplog.text, repr(config), repr(updates)]
    assert not [t for t in texts if secret in t]
    assert "***REDACTED***" in repr(caught.value.raw_response)
    assert server.submissions[0]["headers"]["authorization"] == "***REDACTED***"
    assert server.counts == {"submit": 1, "status": 6, "result": 1, "cancel": 0}


def test_environment_key_echoed_by_fal_never_leaks(
    make_server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "fal-sk-77aa-0b1c2d3e4f5a-ENVSECRET"
    server = make_server(api_key=secret)
    monkeypatch.setenv("FAL_KEY", secret)
    caplog.set_level(logging.DEBUG)
    server.inject("submit", status_code=403, body={"detail": f"key {secret} is revoked"})
    with pytest.raises(HTTPError) as caught:
        generate_video(server.video_config(api_key=None), REQUEST)
    assert caught.value.message == ("fal answered HTTP 403: key ***REDACTED*** is revoked")
    assert not [t for t in [*_texts(caught.value), caplog.text] if secret in t]
