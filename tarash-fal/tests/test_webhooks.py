"""tarash_fal.webhooks: signature, timestamp, headers, key set, the event, the fetch flow."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tarash.tarash_gateway.exceptions import HTTPError, WebhookVerificationError
from tarash.tarash_gateway.plugin import Request, Response
from tarash.tarash_gateway.webhooks import WebhookContext, WebhookEvent
from tarash_fal import webhooks
from tarash_fal.webhooks import DEFAULT_JWKS_URL, JWKSCache, verify, verify_flow, verify_webhook

NOW = 1_780_000_000
BODY = json.dumps(
    {
        "request_id": "req-1",
        "gateway_request_id": "req-1",
        "status": "OK",
        "payload": {"video": {"url": "https://v3.fal.media/files/x.mp4"}},
    }
).encode()


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _jwk(key: Ed25519PrivateKey, *, padded: bool = False) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x if padded else x.rstrip("="), "kid": "k"}


def _headers(
    key: Ed25519PrivateKey, body: bytes = BODY, *, ts: int = NOW, rid: str = "req-1"
) -> dict[str, str]:
    message = f"{rid}\nuser-9\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Fal-Webhook-Request-Id": rid,
        "X-Fal-Webhook-User-Id": "user-9",
        "X-Fal-Webhook-Timestamp": str(ts),
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


def _reason(**kwargs: Any) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(**kwargs)
    assert caught.value.provider == "fal"
    return caught.value.reason


def test_a_signed_delivery_becomes_a_completed_event() -> None:
    key = _key()
    event = verify(_headers(key), BODY, jwks={"keys": [_jwk(key)]}, now=NOW)
    assert event == WebhookEvent(
        provider="fal",
        job_id="req-1",
        state="completed",
        output={"video": {"url": "https://v3.fal.media/files/x.mp4"}},
        raw=json.loads(BODY),
    )
    assert event.error is None and event.delivery_id is None


def test_every_key_is_tried_and_padding_is_optional() -> None:
    other, signer = _key(), _key()
    jwks = {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, _jwk(other), _jwk(signer, padded=True)]}
    assert verify(_headers(signer), BODY, jwks=jwks, now=NOW).job_id == "req-1"


def test_lower_case_header_names_are_accepted() -> None:
    key = _key()
    headers = {name.lower(): value for name, value in _headers(key).items()}
    assert verify(headers, BODY, jwks={"keys": [_jwk(key)]}, now=NOW).state == "completed"


def test_tampered_body_wrong_key_and_stale_timestamp_are_refused() -> None:
    key, stranger = _key(), _key()
    jwks = {"keys": [_jwk(key)]}
    tampered = BODY.replace(b"x.mp4", b"y.mp4")
    assert _reason(headers=_headers(key), body=tampered, jwks=jwks, now=NOW) == "bad_signature"
    assert _reason(headers=_headers(stranger), body=BODY, jwks=jwks, now=NOW) == "bad_signature"
    assert _reason(headers=_headers(key, ts=NOW - 301), body=BODY, jwks=jwks, now=NOW) == "stale_timestamp"
    assert _reason(headers=_headers(key, ts=NOW + 301), body=BODY, jwks=jwks, now=NOW) == "stale_timestamp"
    assert verify(_headers(key, ts=NOW - 300), BODY, jwks=jwks, now=NOW).job_id == "req-1"


def test_a_signature_over_other_header_values_is_refused() -> None:
    key = _key()
    headers = _headers(key)
    headers["X-Fal-Webhook-User-Id"] = "user-10"
    assert _reason(headers=headers, body=BODY, jwks={"keys": [_jwk(key)]}, now=NOW) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
def test_a_missing_header_is_refused_naming_it(header: str) -> None:
    key = _key()
    headers = _headers(key)
    del headers[header]
    with pytest.raises(WebhookVerificationError, match=header.lower()) as caught:
        verify(headers, BODY, jwks={"keys": [_jwk(key)]}, now=NOW)
    assert caught.value.reason == "missing_header"


def test_malformed_values_and_bodies_are_refused() -> None:
    key = _key()
    jwks = {"keys": [_jwk(key)]}
    headers = _headers(key)
    headers["X-Fal-Webhook-Signature"] = "zz"
    assert _reason(headers=headers, body=BODY, jwks=jwks, now=NOW) == "malformed"
    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in "1700000000")  # digits, not ASCII
    for timestamp in ("yesterday", "9" * 400, fullwidth, "-1"):  # "9" * 400 overflowed the check
        headers = _headers(key)
        headers["X-Fal-Webhook-Timestamp"] = timestamp
        assert _reason(headers=headers, body=BODY, jwks=jwks, now=NOW) == "malformed"
    for body in (b"not json", b'{"request_id": "r"}', b'{"status": "OK"}', b"[1]"):
        assert _reason(headers=_headers(key, body), body=body, jwks=jwks, now=NOW) == "malformed"


def test_a_key_set_without_ed25519_keys_is_an_unknown_key() -> None:
    key = _key()
    jwks = {"keys": [{"kty": "OKP", "crv": "X25519", "x": _jwk(key)["x"]}, {"kty": "OKP", "x": "!!"}]}
    assert _reason(headers=_headers(key), body=BODY, jwks=jwks, now=NOW) == "unknown_key"
    assert _reason(headers=_headers(key), body=BODY, jwks={}, now=NOW) == "unknown_key"


def test_error_and_unserialisable_payloads() -> None:
    key = _key()
    jwks = {"keys": [_jwk(key)]}
    failed = json.dumps(
        {
            "request_id": "req-2",
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]},
        }
    ).encode()
    event = verify(_headers(key, failed, rid="req-2"), failed, jwks=jwks, now=NOW)
    assert (event.job_id, event.state, event.error) == ("req-2", "failed", "Invalid status code: 422")
    assert event.output == {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}
    odd = json.dumps(
        {"request_id": "req-3", "status": "OK", "payload": None, "payload_error": "bad"}
    ).encode()
    event = verify(_headers(key, odd, rid="req-3"), odd, jwks=jwks, now=NOW)
    assert (event.state, event.output, event.error) == ("completed", None, "bad")


def _drive(flow: Any, answers: list[Response]) -> tuple[Any, list[Request]]:
    sent: list[Request] = []
    try:
        request = next(flow)
        while True:
            sent.append(request)
            request = flow.send(answers.pop(0))
    except StopIteration as stop:
        return stop.value, sent


def _answer(jwks: Any) -> Response:
    return Response(
        status_code=200, headers={"content-type": "application/json"}, content=json.dumps(jwks).encode()
    )


def test_the_flow_fetches_the_key_set_once_then_uses_the_cache() -> None:
    key, cache = _key(), JWKSCache()
    url = "https://keys.example/jwks.json"
    event, sent = _drive(
        verify_flow(_headers(key), BODY, jwks_url=url, now=NOW, cache=cache), [_answer({"keys": [_jwk(key)]})]
    )
    assert event.job_id == "req-1"
    assert sent == [Request(method="GET", url=url, headers={"Accept": "application/json"}, auth=False)]
    event, sent = _drive(verify_flow(_headers(key), BODY, jwks_url=url, now=NOW + 60, cache=cache), [])
    assert (event.job_id, sent) == ("req-1", [])


def test_the_cache_expires_after_24_hours() -> None:
    key, cache = _key(), JWKSCache(max_age=48 * 3600)
    assert cache.max_age == 24 * 3600
    cache.put(DEFAULT_JWKS_URL, {"keys": [_jwk(key)]}, NOW)
    assert cache.get(DEFAULT_JWKS_URL, NOW + 24 * 3600 - 1) is not None
    assert cache.get(DEFAULT_JWKS_URL, NOW + 24 * 3600) is None
    later = NOW + 24 * 3600
    _event, sent = _drive(
        verify_flow(_headers(key, ts=later), BODY, now=later, cache=cache), [_answer({"keys": [_jwk(key)]})]
    )
    assert [r.url for r in sent] == [DEFAULT_JWKS_URL]


def test_rotated_keys_are_refetched_at_most_every_ten_minutes() -> None:
    old, new, cache = _key(), _key(), JWKSCache()
    cache.put(DEFAULT_JWKS_URL, {"keys": [_jwk(old)]}, NOW)
    flow = verify_flow(_headers(new, ts=NOW + 599), BODY, now=NOW + 599, cache=cache)
    with pytest.raises(WebhookVerificationError) as caught:
        next(flow)
    assert caught.value.reason == "bad_signature"
    event, sent = _drive(
        verify_flow(_headers(new, ts=NOW + 600), BODY, now=NOW + 600, cache=cache),
        [_answer({"keys": [_jwk(new)]})],
    )
    assert (event.job_id, len(sent)) == ("req-1", 1)
    assert cache.get(DEFAULT_JWKS_URL, NOW + 601) == {"keys": [_jwk(new)]}


def test_headers_are_checked_before_any_fetch() -> None:
    flow = verify_flow({}, BODY, now=NOW, cache=JWKSCache())
    with pytest.raises(WebhookVerificationError) as caught:
        next(flow)
    assert caught.value.reason == "missing_header"


def test_a_fetch_that_is_no_key_set_or_fails() -> None:
    key = _key()
    flow = verify_flow(_headers(key), BODY, now=NOW, cache=JWKSCache())
    next(flow)
    with pytest.raises(WebhookVerificationError) as caught:
        flow.send(_answer(["nope"]))
    assert caught.value.reason == "unknown_key"
    flow = verify_flow(_headers(key), BODY, now=NOW, cache=JWKSCache())
    next(flow)
    with pytest.raises(HTTPError):
        flow.throw(HTTPError("boom", status_code=503))


def test_verify_without_a_key_set_uses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    key, cache = _key(), JWKSCache()
    monkeypatch.setattr(webhooks, "JWKS_CACHE", cache)
    assert _reason(headers=_headers(key), body=BODY, now=NOW) == "unknown_key"
    cache.put(DEFAULT_JWKS_URL, {"keys": [_jwk(key)]}, NOW)
    assert verify(_headers(key), BODY, now=NOW).job_id == "req-1"


def test_the_hook_flow_reads_the_key_set_url_from_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    key, cache = _key(), JWKSCache()
    monkeypatch.setattr(webhooks, "JWKS_CACHE", cache)
    context = WebhookContext(provider="fal", now=NOW, options={"jwks_url": "https://k.example/j"})
    event, sent = _drive(
        verify_webhook("fal", _headers(key), BODY, context), [_answer({"keys": [_jwk(key)]})]
    )
    assert event.job_id == "req-1"
    assert [r.url for r in sent] == ["https://k.example/j"]


def test_a_delivery_signed_for_another_fal_account_is_refused_when_the_account_is_pinned() -> None:
    """fal signs every account's deliveries with the same keys: with ``user_id`` set, only those
    signed for that account pass (the user id is part of the signed message)."""
    key = _key()
    jwks = {"keys": [_jwk(key)]}
    assert verify(_headers(key), BODY, jwks=jwks, now=NOW, user_id="user-9").job_id == "req-1"
    assert (
        _reason(headers=_headers(key), body=BODY, jwks=jwks, now=NOW, user_id="user-1") == "foreign_account"
    )
    assert verify(_headers(key), BODY, jwks=jwks, now=NOW).job_id == "req-1"  # not pinned: any account
