"""Vertex AI credentials: an OAuth access token from a credentials file, as a flow.

The file is Application Default Credentials JSON: a service account (``"type":
"service_account"``: an RS256 JWT assertion signed with its key, exchanged at its ``token_uri``,
RFC 7523) or a ``gcloud auth application-default login`` user (``"authorized_user"``: its refresh
token exchanged at its ``token_uri``). The exchange is a Request the flow yields (``auth=False``),
so core's transport and deadline apply and a test can point the file's ``token_uri`` at a local
endpoint. Tokens are cached per credential (a hash of its key or refresh token, never the secret
itself) until a minute before they expire.

Signing uses google-auth's ``RSASigner`` (the optional ``vertex`` extra): the signer Google's own
clients use, which reads every key format Google issues; it is pure computation, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from tarash.tarash_gateway.exceptions import HTTPError, ValidationError
from tarash.tarash_gateway.plugin import Flow, Request

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME = 3600
#: Refresh this many seconds before the token's stated expiry.
EXPIRY_MARGIN = 60.0
FIELD = "provider_config.credentials_file"
#: Per file type, the fields whose values decide which access token the exchange returns.
EXCHANGED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "service_account": ("client_email", "private_key_id", "private_key"),
    "authorized_user": ("client_id", "client_secret", "refresh_token"),
}


@attrs.frozen(kw_only=True)
class Credentials:
    """A parsed credentials file (the secret parts never appear in ``repr``)."""

    path: str
    kind: str
    identity: str
    token_uri: str
    project: str | None = None
    quota_project: str | None = None
    info: Mapping[str, Any] = attrs.field(repr=False, factory=dict)


def _invalid(path: str, why: str) -> ValidationError:
    return ValidationError(f"Google credentials file {path!r} {why}", field=FIELD, value=path)


def load(path: str) -> Credentials:
    """Read and check a credentials file (ValidationError if unreadable or of an unknown type)."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as exc:
        raise _invalid(path, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError:
        raise _invalid(path, "is not JSON") from None
    if not isinstance(info, dict):
        raise _invalid(path, "is not a JSON object")
    kind = info.get("type")
    needed = {
        "service_account": ("client_email", "private_key"),
        "authorized_user": ("client_id", "client_secret", "refresh_token"),
    }.get(str(kind))
    if needed is None:
        raise _invalid(path, f"has type {kind!r}; supported: service_account, authorized_user")
    missing = [name for name in needed if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise _invalid(path, f"lacks {', '.join(missing)}")
    return Credentials(
        path=path,
        kind=str(kind),
        identity=info[needed[0]],
        token_uri=str(info.get("token_uri") or DEFAULT_TOKEN_URI),
        project=info.get("project_id"),
        quota_project=info.get("quota_project_id"),
        info=info,
    )


_lock = threading.Lock()
_tokens: dict[str, tuple[str, float]] = {}


def _key(credentials: Credentials) -> str:
    """The cache key: a SHA-256 of everything the token exchange sends, so one entry per credential.

    The names in a file are shared: every gcloud application-default login file carries gcloud's
    ``client_id``, and a service account keeps its ``client_email`` when its key is rotated. Keyed by
    those, one user would be sent another's token, and a replaced key would run on the old key's
    token. Hashing keeps the refresh token and private key themselves out of the cache.
    """
    material = [credentials.kind, credentials.token_uri]
    material += [str(credentials.info.get(name) or "") for name in EXCHANGED_FIELDS[credentials.kind]]
    return hashlib.sha256(json.dumps(material).encode("utf-8")).hexdigest()


def cached_token(credentials: Credentials, now: float | None = None) -> str | None:
    """The cached access token, if it is still valid for at least :data:`EXPIRY_MARGIN`."""
    with _lock:
        entry = _tokens.get(_key(credentials))
    if entry is None or entry[1] - EXPIRY_MARGIN <= (time.time() if now is None else now):
        return None
    return entry[0]


def clear_tokens() -> None:
    """Forget every cached token (tests; a rotated credentials file gets its own entry without this)."""
    with _lock:
        _tokens.clear()


def _assertion(credentials: Credentials, now: int) -> str:
    try:
        from google.auth import crypt, jwt
    except ImportError:
        raise ValidationError(
            "Vertex AI service-account credentials need google-auth: pip install 'tarash-google[vertex]'",
            field=FIELD,
        ) from None
    try:
        signer = crypt.RSASigner.from_service_account_info(dict(credentials.info))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise _invalid(credentials.path, f"has an unusable private_key ({exc})") from None
    claims = {
        "iss": credentials.identity,
        "scope": SCOPE,
        "aud": credentials.token_uri,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    encoded: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    return encoded.decode("ascii")


def token_request(credentials: Credentials, now: int | None = None) -> Request:
    """The OAuth token request for these credentials (form-encoded, without core's auth header)."""
    if credentials.kind == "service_account":
        form = {"grant_type": JWT_BEARER, "assertion": _assertion(credentials, now or int(time.time()))}
    else:
        form = {
            "grant_type": "refresh_token",
            "client_id": credentials.info["client_id"],
            "client_secret": credentials.info["client_secret"],
            "refresh_token": credentials.info["refresh_token"],
        }
    return Request(
        method="POST",
        url=credentials.token_uri,
        content=urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=False,
        idempotent=True,
    )


def access_token(credentials: Credentials) -> Flow[str]:
    """A valid access token: from the cache, else one token exchange."""
    token = cached_token(credentials)
    if token is not None:
        return token
    try:
        answer = yield token_request(credentials)
    except HTTPError as exc:
        if exc.status_code in (400, 401, 403):
            body = exc.raw_response if isinstance(exc.raw_response, dict) else {}
            reason = ": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
            raise _invalid(
                credentials.path,
                f"was refused by {credentials.token_uri} "
                f"(HTTP {exc.status_code}{': ' + reason if reason else ''})",
            ) from exc
        raise
    try:
        body = answer.json()
        token = str(body["access_token"])
        lifetime = float(body.get("expires_in", ASSERTION_LIFETIME))
    except (ValueError, KeyError, TypeError):
        raise _invalid(credentials.path, f"got no access_token from {credentials.token_uri}") from None
    with _lock:
        _tokens[_key(credentials)] = (token, time.time() + lifetime)
    return token
