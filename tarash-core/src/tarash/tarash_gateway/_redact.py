"""Secret redaction at any depth, for logs, errors, raw responses and serialised state.

Two mechanisms work together:

* key-based: values under keys that name credentials (``api_key``, ``Authorization``,
  ``x-api-key``, ``token``…) are replaced at any depth, and credential-like query parameters
  (``key=``, ``token=``, ``signature=``…) and user-info (``user:password@``) in URLs are masked;
* value-based: every API key that passes through a config is remembered (in memory, only as long
  as the process lives) and scrubbed from any text, so a key echoed by a provider inside an error
  message is caught too.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_RAW_ITEMS",
    "MAX_RAW_TEXT",
    "REDACTED",
    "RedactingFilter",
    "cap_raw_response",
    "get_logger",
    "is_secret_key",
    "redact",
    "redact_text",
    "redacted_repr",
    "register_secret",
]

REDACTED = "***REDACTED***"
MAX_RAW_TEXT = 4096
MAX_RAW_ITEMS = 200
MAX_DEPTH = 12

_SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "key",
        "fal_key",
        "authorization",
        "proxy-authorization",
        "auth",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "credentials",
        "cookie",
        "set-cookie",
        "bearer",
        "private_key",
        "signature",
        "x-fal-key",
        "x-goog-api-key",
    }
)
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:key|api_key|apikey|token|access_token|sig|signature|x-amz-signature|"
    r"x-goog-signature|x-amz-credential|x-amz-security-token|auth)=)[^&#\s\"']+"
)
# Credentials in a URL's user-info part (``https://user:password@host``, ``https://token@host``).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"'<>]+@")
# An auth scheme followed by a credential-looking value: 8+ token characters including a digit,
# or 24+ of them, so ordinary prose ("the key difference", "Basic authentication") is left alone.
_AUTH_HEADER_TEXT = re.compile(
    r"(?i)\b(Bearer|Key|Basic|Token)\s+"
    r"(?=[A-Za-z0-9._~+/=:-]*[0-9]|[A-Za-z0-9._~+/=:-]{24})[A-Za-z0-9._~+/=:-]{8,}"
)

_lock = threading.Lock()
_known_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret so it is scrubbed from any text Tarash emits."""
    global _secret_pattern
    if not isinstance(value, str) or len(value.strip()) < 6 or value in _known_secrets:
        return
    with _lock:
        _known_secrets.add(value)
        ordered = sorted(_known_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    norm = key.strip().lower()
    return norm in _SECRET_KEYS or norm.endswith(("_api_key", "-api-key", "_secret", "_token"))


def redact_text(text: str) -> str:
    """Scrub known secrets, credentials in URLs and auth header values from text."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    return _AUTH_HEADER_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact(value: Any, *, _depth: int = 0) -> Any:
    """Return a redacted deep copy of ``value`` (dicts, lists, tuples, strings, bytes).

    Text (dict keys included) is scrubbed with :func:`redact_text`. Bytes become their size,
    other objects their (scrubbed) repr, and anything nested deeper than ``MAX_DEPTH`` is
    replaced by a marker.
    """
    if _depth > MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {
            (redact_text(k) if isinstance(k, str) else k): (
                REDACTED if is_secret_key(k) and v not in (None, "") else redact(v, _depth=_depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, tuple):
        return tuple(redact(v, _depth=_depth + 1) for v in value)
    if isinstance(value, (list, set, frozenset)):
        return [redact(v, _depth=_depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(_safe_repr(value))


def redacted_repr(value: Any) -> str:
    """``repr`` with secrets scrubbed: credential-named keys, known keys, URL tokens (the repr of
    a record's fields that may hold them)."""
    return redact_text(repr(redact(value) if isinstance(value, Mapping) else value))


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def cap_raw_response(value: Any) -> Any:
    """Redact and cap a provider answer so exceptions stay small and safe to log."""
    if value is None:
        return None
    return _cap(redact(value))


def _cap(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_RAW_TEXT:
        return value[:MAX_RAW_TEXT] + f"... [{len(value) - MAX_RAW_TEXT} more characters]"
    if isinstance(value, dict):
        items = list(value.items())
        capped = {k: _cap(v) for k, v in items[:MAX_RAW_ITEMS]}
        if len(items) > MAX_RAW_ITEMS:
            capped["..."] = f"{len(items) - MAX_RAW_ITEMS} more keys"
        return capped
    if isinstance(value, list):
        capped_list = [_cap(v) for v in value[:MAX_RAW_ITEMS]]
        if len(value) > MAX_RAW_ITEMS:
            capped_list.append(f"... {len(value) - MAX_RAW_ITEMS} more items")
        return capped_list
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from a record's message, arguments and traceback.

    The message is formatted with its (redacted) arguments and the result scrubbed as a whole, so
    a secret split between the format string and an argument (``"Bearer %s"``) is caught too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args
            if isinstance(args, Mapping):
                record.args = redact(dict(args))
            else:
                record.args = tuple(_redact_arg(a) for a in args)
            try:
                record.msg, record.args = redact_text(record.getMessage()), ()
            except Exception:  # a malformed format string: logging reports it when formatting
                record.msg = _redact_arg(record.msg)
        else:
            record.msg = _redact_arg(record.msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name in ("context",):
            if hasattr(record, name):
                setattr(record, name, redact(getattr(record, name)))
        return True


def _redact_arg(value: Any) -> Any:
    """A log message or argument, redacted; other objects are kept unless they show a secret.

    Keeping clean objects as they are preserves ``%s``/``%r`` formatting of exceptions and the
    like; an object whose ``str`` or ``repr`` shows a secret becomes scrubbed text.
    """
    if value is None or isinstance(
        value, (bool, int, float, str, bytes, bytearray, memoryview, Mapping, list, tuple, set, frozenset)
    ):
        return redact(value)
    try:
        text, shown = str(value), repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    if redact_text(text) == text and redact_text(shown) == shown:
        return value
    return redact_text(text)


def get_logger(name: str) -> logging.Logger:
    """A logger (core's, under ``tarash``, or one of the HTTP stack core sends through) whose
    records are redacted before any handler sees them."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
