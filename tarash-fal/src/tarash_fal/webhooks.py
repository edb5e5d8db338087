"""Verify fal webhook deliveries (ED25519 signatures against fal's published JWKS).

fal signs each delivery (https://fal.ai/docs/documentation/model-apis/inference/webhooks): the
headers ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` (unix seconds) and
``-Signature`` (hex) carry an ED25519 signature over::

    request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + sha256(raw body).hexdigest()

made with one of the keys published at ``https://rest.fal.ai/.well-known/jwks.json``. A delivery
is accepted when every header is present, the timestamp is within 300 s of now and some published
key verifies the signature; then its body (``{"request_id", "gateway_request_id", "status":
"OK"|"ERROR", "payload", ...}``) becomes a :class:`~tarash.tarash_gateway.webhooks.WebhookEvent`.

With a key set in hand (``jwks=``), :func:`verify` needs no network::

    event = verify(request.headers, raw_body, jwks=jwks)

Otherwise the key set comes from :data:`JWKS_CACHE` (kept at most 24 h, as fal asks), filled by
:func:`verify_flow`, which describes the fetch as a request for Tarash's transport to send (the
webhook receiver drives it). Needs ``cryptography``: ``pip install 'tarash-fal[webhooks]'``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.exceptions import WebhookVerificationError
from tarash.tarash_gateway.plugin import Request
from tarash.tarash_gateway.utils import get_logger
from tarash.tarash_gateway.webhooks import WebhookEvent

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from tarash.tarash_gateway.plugin import Flow
    from tarash.tarash_gateway.webhooks import WebhookContext

__all__ = [
    "DEFAULT_JWKS_URL",
    "JWKS_CACHE",
    "JWKS_MAX_AGE",
    "TIMESTAMP_TOLERANCE",
    "JWKSCache",
    "parse_event",
    "signed_message",
    "verify",
    "verify_flow",
    "verify_webhook",
]

_log = get_logger("tarash.fal")

DEFAULT_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
#: Seconds a delivery's timestamp may be off from now.
TIMESTAMP_TOLERANCE = 300
#: Seconds a fetched key set is used ("do not cache longer than 24 hours").
JWKS_MAX_AGE = 24 * 3600
#: When no cached key verifies a delivery, the key set is fetched again (fal may have rotated
#: keys), at most this often per URL.
JWKS_REFRESH_INTERVAL = 600

HEADER_REQUEST_ID = "x-fal-webhook-request-id"
HEADER_USER_ID = "x-fal-webhook-user-id"
HEADER_TIMESTAMP = "x-fal-webhook-timestamp"
HEADER_SIGNATURE = "x-fal-webhook-signature"
_HEADERS = (HEADER_REQUEST_ID, HEADER_USER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)
#: Unix seconds fit in 12 digits for 30,000 years: a longer timestamp is refused as malformed
#: before any arithmetic (400 digits overflowed the tolerance check).
_TIMESTAMP_DIGITS = 12


class JWKSCache:
    """Fetched key sets per URL, each used for at most ``max_age`` seconds (thread-safe)."""

    def __init__(self, max_age: float = JWKS_MAX_AGE) -> None:
        self.max_age = min(max_age, JWKS_MAX_AGE)
        self._entries: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, now: float) -> Mapping[str, Any] | None:
        """The key set fetched from ``url`` less than ``max_age`` seconds before ``now``."""
        with self._lock:
            entry = self._entries.get(url)
        if entry is None or not 0 <= now - entry[0] < self.max_age:
            return None
        return entry[1]

    def put(self, url: str, jwks: Mapping[str, Any], now: float) -> None:
        with self._lock:
            self._entries[url] = (now, jwks)

    def may_refresh(self, url: str, now: float) -> bool:
        """Whether a key set that verified nothing may be fetched again already."""
        with self._lock:
            entry = self._entries.get(url)
        return entry is None or now - entry[0] >= JWKS_REFRESH_INTERVAL

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The process-wide cache :func:`verify` and :func:`verify_flow` use by default.
JWKS_CACHE = JWKSCache()


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes fal signs for a delivery."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((request_id, user_id, timestamp, digest)).encode("utf-8")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _signed_headers(headers: Mapping[str, str], now: float) -> tuple[str, str, str, bytes]:
    values = {name: _header(headers, name) for name in _HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise WebhookVerificationError(
            f"fal webhook without {', '.join(missing)}", reason="missing_header", provider="fal"
        )
    request_id, user_id, timestamp, signature = (str(values[name]) for name in _HEADERS)
    try:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
            raise ValueError(timestamp)
        sent_at = int(timestamp)
        raw_signature = bytes.fromhex(signature)
    except ValueError:
        raise WebhookVerificationError(
            "fal webhook timestamp or signature is not well-formed", reason="malformed", provider="fal"
        ) from None
    if abs(now - sent_at) > TIMESTAMP_TOLERANCE:
        raise WebhookVerificationError(
            f"fal webhook timestamp is {now - sent_at:+.0f} s off (more than {TIMESTAMP_TOLERANCE} s)",
            reason="stale_timestamp",
            provider="fal",
        )
    return request_id, user_id, timestamp, raw_signature


def _public_keys(jwks: Mapping[str, Any]) -> list[Ed25519PublicKey]:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "Verifying fal webhooks needs cryptography: pip install 'tarash-fal[webhooks]'"
        ) from None
    keys = []
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("kty", "OKP") != "OKP":
            continue
        if entry.get("crv", "Ed25519") != "Ed25519" or not isinstance(entry.get("x"), str):
            continue
        try:
            raw = base64.urlsafe_b64decode(entry["x"] + "=" * (-len(entry["x"]) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            continue
    return keys


def _verifies(keys: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def parse_event(body: bytes) -> WebhookEvent:
    """A verified delivery body as an event: ``OK`` -> completed (``output`` = the payload),
    ``ERROR`` -> failed (``error`` = fal's error text).

    A completed job whose output fal could not serialise arrives with ``payload`` null and
    ``payload_error``: the event is ``completed`` with no output and that ``error``, so the output
    must be read with a result call.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    request_id = data.get("request_id") if isinstance(data, dict) else None
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(request_id, str) or status not in ("OK", "ERROR"):
        raise WebhookVerificationError(
            "fal webhook body is not an event (request_id and status OK/ERROR)",
            reason="malformed",
            provider="fal",
        )
    payload = data.get("payload")
    if status == "ERROR":
        error = data.get("error") or "fal reported an error"
        return WebhookEvent(
            provider="fal", job_id=request_id, state="failed", output=payload, error=str(error), raw=data
        )
    error = data.get("payload_error") if payload is None else None
    return WebhookEvent(
        provider="fal",
        job_id=request_id,
        state="completed",
        output=payload,
        error=str(error) if error is not None else None,
        raw=data,
    )


def _check(jwks: Mapping[str, Any], signed: tuple[str, str, str, bytes], body: bytes) -> str | None:
    """None when a key of ``jwks`` verifies the delivery, else the failure's reason."""
    keys = _public_keys(jwks)
    if not keys:
        return "unknown_key"
    request_id, user_id, timestamp, signature = signed
    return (
        None
        if _verifies(keys, signature, signed_message(request_id, user_id, timestamp, body))
        else "bad_signature"
    )


def _check_account(signed: tuple[str, str, str, bytes], user_id: str | None) -> None:
    """Refuse a verified delivery signed for another fal account than ``user_id`` (None: any)."""
    if user_id is not None and not hmac.compare_digest(signed[1], user_id):
        raise WebhookVerificationError(
            "fal webhook was signed for another fal account", reason="foreign_account", provider="fal"
        )


def _rejected(reason: str) -> WebhookVerificationError:
    if reason == "unknown_key":
        return WebhookVerificationError("fal's key set holds no ED25519 key", reason=reason, provider="fal")
    return WebhookVerificationError(
        "fal webhook signature matches none of fal's published keys", reason=reason, provider="fal"
    )


def _fetch_jwks(url: str) -> Flow[Mapping[str, Any]]:
    answer = yield Request(method="GET", url=url, headers={"Accept": "application/json"}, auth=False)
    try:
        jwks = answer.json()
    except ValueError:
        jwks = None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise WebhookVerificationError(f"{url} did not answer a JWKS", reason="unknown_key", provider="fal")
    return jwks


def verify_flow(
    headers: Mapping[str, str],
    body: bytes,
    *,
    jwks_url: str = DEFAULT_JWKS_URL,
    now: float | None = None,
    cache: JWKSCache | None = None,
    user_id: str | None = None,
) -> Flow[WebhookEvent]:
    """Verify a delivery, fetching the key set when ``cache`` has none fresh (a flow).

    ``cache`` defaults to :data:`JWKS_CACHE`. Headers and timestamp are checked before any
    fetch. The flow yields one ``GET jwks_url`` (``auth=False``) when the key set is not cached,
    or when no cached key verifies and the set is older than :data:`JWKS_REFRESH_INTERVAL` (fal
    rotated its keys); otherwise it yields nothing.

    :raises WebhookVerificationError: see :func:`verify`.
    """
    moment = time.time() if now is None else now
    signed = _signed_headers(headers, moment)
    cache = JWKS_CACHE if cache is None else cache
    jwks = cache.get(jwks_url, moment)
    fresh = jwks is None
    if jwks is None:
        jwks = yield from _fetch_jwks(jwks_url)
        cache.put(jwks_url, jwks, moment)
    reason = _check(jwks, signed, body)
    if reason is not None and not fresh and cache.may_refresh(jwks_url, moment):
        jwks = yield from _fetch_jwks(jwks_url)
        cache.put(jwks_url, jwks, moment)
        reason = _check(jwks, signed, body)
    if reason is not None:
        raise _rejected(reason)
    _check_account(signed, user_id)
    event = parse_event(body)
    _log.debug("fal webhook for %s verified (header request id %s)", event.job_id, signed[0])
    return event


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    jwks: Mapping[str, Any] | None = None,
    jwks_url: str = DEFAULT_JWKS_URL,
    now: float | None = None,
    user_id: str | None = None,
) -> WebhookEvent:
    """Verify a fal delivery and return its event; nothing is applied or remembered.

    :param headers: the delivery's headers (any case).
    :param body: the raw body, exactly as received (not re-serialised JSON).
    :param jwks: fal's key set (``{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ...}]}``);
        default: the one :data:`JWKS_CACHE` holds for ``jwks_url``.
    :param now: unix seconds to check the timestamp against (default: the clock).
    :param user_id: your fal account's user id: a delivery signed for another account (fal signs
        every account's deliveries with the same keys) is refused.
    :raises WebhookVerificationError: ``reason`` ``missing_header``, ``stale_timestamp``,
        ``malformed``, ``bad_signature`` (no key verifies it), ``foreign_account`` (signed for
        another ``user_id``) or ``unknown_key`` (no ED25519 key,
        or no key set given and none cached for ``jwks_url``: verify through Tarash's webhook
        receiver, or fetch the key set yourself and pass ``jwks``).
    """
    moment = time.time() if now is None else now
    signed = _signed_headers(headers, moment)
    keys = JWKS_CACHE.get(jwks_url, moment) if jwks is None else jwks
    if keys is None:
        raise WebhookVerificationError(
            f"no fal key set cached for {jwks_url}: pass jwks=", reason="unknown_key", provider="fal"
        )
    reason = _check(keys, signed, body)
    if reason is not None:
        raise _rejected(reason)
    _check_account(signed, user_id)
    return parse_event(body)


def verify_webhook(
    provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext
) -> Flow[WebhookEvent]:
    """The ``verify_webhook`` hook's flow for fal: ``context.options`` may set ``jwks_url`` and
    ``user_id`` (your fal account's: deliveries signed for another account are refused)."""
    jwks_url = str(context.options.get("jwks_url", DEFAULT_JWKS_URL))
    user_id = context.options.get("user_id")
    return (
        yield from verify_flow(
            headers,
            body,
            jwks_url=jwks_url,
            now=context.now,
            user_id=None if user_id is None else str(user_id),
        )
    )
