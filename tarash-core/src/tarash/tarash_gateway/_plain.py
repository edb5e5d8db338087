"""Plain JSON data for Tarash records, and the JSON text on either side.

:func:`unstructure` writes a record (or plain data holding records) as plain JSON data in one
pass, driven by the values themselves: an attrs record becomes a dict of its ``__init__`` fields
(never a config's ``api_key``), bytes base64 text, ``Decimal`` a decimal string (amounts stay
exact), datetimes and dates ISO 8601 text, an enum its value, tuples and sets lists, an exception
its qualified type and redacted message (see :func:`_exception`), and every string has the known
secrets scrubbed. Anything else is refused with its path
(``Not serialisable: object @ $.provider_config.client``).

Reading data back (strict, with an error path for each problem) is the cattrs converter's job
(``_converters``, through ``_codec``). Writing needs no declared types, so it needs no cattrs: the
first ledger write of a fresh process loads none of it, resolves no annotations and builds no hooks.

A config is written without what its repr hides: its ``api_key``, credentials in its
``base_url`` and ``webhook_url``, and secret-named entries of its ``provider_config``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs

from . import _redact
from .exceptions import TarashException, ValidationError
from .models import ImageGenerationConfig, VideoGenerationConfig

__all__ = ["parse_json", "to_json_text", "unstructure"]

#: Records whose ``api_key`` is never written, subclasses included (configs come back with
#: ``api_key=None``).
_CONFIGS = (VideoGenerationConfig, ImageGenerationConfig)
#: type -> the names of the fields written (None: not an attrs class), filled in at its first value.
_FIELDS: dict[type[Any], tuple[str, ...] | None] = {}
_UNSEEN: Any = object()

_Scrub = Callable[[str, str], str] | None


def unstructure(obj: Any, *, media_limit: int | None = None) -> Any:
    """Plain JSON data for ``obj`` (API keys omitted, known secrets scrubbed).

    With ``media_limit`` (data to store), media bytes are left out: a base64 ``{content,
    content_type}`` object becomes ``{content_type, size, stored: false}`` and a ``data:`` URI
    longer than ``media_limit`` characters its head and size; and a number that is not finite
    (which JSON cannot hold) is refused like any value that is not plain.
    """
    pattern = _redact._secret_pattern
    scrub = None if pattern is None else pattern.sub
    try:
        return _write(obj, scrub, media_limit, None)
    except _NotPlain:
        return _write(obj, scrub, media_limit, "$")  # raises ValidationError, naming the path


class _NotPlain(Exception):
    """A value :func:`_write` cannot write (written again with paths, to name it)."""


def _not_plain(problem: str, path: str | None) -> Exception:
    if path is None:
        return _NotPlain()
    return ValidationError(f"Not serialisable: {problem} @ {path}", field=path, value=None)


def _write(value: Any, scrub: _Scrub, limit: int | None, path: str | None) -> Any:
    """``value`` as plain data; ``path`` is None on the fast pass (a problem raises _NotPlain)
    and the value's path on the pass that names the problem (it raises ValidationError)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        if limit is not None and len(value) > limit and value.startswith("data:"):
            value = _uri_without_bytes(value)
        return str(value) if scrub is None else scrub(_redact.REDACTED, value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if limit is not None and not math.isfinite(value):
            raise _not_plain(repr(value), path)
        return value
    if isinstance(value, Mapping):
        written: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _not_plain(f"non-string key {key!r}", path)
            written[key] = _write(item, scrub, limit, None if path is None else f"{path}.{key}")
        return _media_without_bytes(written) if limit is not None and _is_media(written) else written
    if isinstance(value, (list, tuple, set, frozenset)):
        if path is None:
            return [_write(item, scrub, limit, None) for item in value]
        return [_write(item, scrub, limit, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, BaseException):
        return _write(_exception(value), scrub, limit, path)
    fields = _FIELDS.get(type(value), _UNSEEN)
    if fields is _UNSEEN:
        fields = _fields(type(value))
    if fields is None:
        raise _not_plain(type(value).__name__, path)
    data = {name: getattr(value, name) for name in fields}
    if isinstance(value, _CONFIGS):
        data = _config_as_written(data)
    return _write(data, scrub, limit, path)


def _config_as_written(data: dict[str, Any]) -> dict[str, Any]:
    """A config's fields with what its repr hides hidden too: credentials in its URLs (a proxy's
    ``user:password@``, a webhook's ``?token=``) and the values of secret-named keys in its
    ``provider_config``. They are not registered secrets, so the scrub of known keys misses them;
    a job resumed from the ledger reaches such a URL without them."""
    for name in ("base_url", "webhook_url"):
        if isinstance(data.get(name), str):
            data[name] = _redact.redact_text(data[name])
    data["provider_config"] = _secret_values_hidden(data["provider_config"])
    return data


def _secret_values_hidden(value: Any) -> Any:
    """``value`` with every value under a secret-named key (``password``, ``*_token``...) replaced
    by the redaction marker; the rest left as it is, to be written (or refused) as usual."""
    if isinstance(value, Mapping):
        return {
            key: _redact.REDACTED
            if _redact.is_secret_key(key) and item not in (None, "")
            else _secret_values_hidden(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_secret_values_hidden(item) for item in value]
    return value


def _fields(cls: type[Any]) -> tuple[str, ...] | None:
    """The fields written for ``cls``: an attrs class's ``__init__`` fields (a config's but its
    ``api_key``); None for any other type (whose values are refused)."""
    names = None
    if attrs.has(cls):
        omitted = "api_key" if issubclass(cls, _CONFIGS) else None
        names = tuple(f.name for f in attrs.fields(cls) if f.init and f.name != omitted)
    _FIELDS[cls] = names
    return names


def _exception(exc: BaseException) -> dict[str, Any]:
    """An exception as its qualified type, redacted message and (a Tarash error's) attributes:
    what ``_converters`` restores, for Tarash and built-in exceptions only."""
    data: dict[str, Any] = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": _redact.redact_text(exc.message if isinstance(exc, TarashException) else str(exc)),
    }
    if isinstance(exc, TarashException):
        data["attributes"] = {
            name: _redact.redact(value)
            for name, value in vars(exc).items()
            if name not in ("message", "execution_metadata") and not name.startswith("__")
        }
    return data


def _is_media(value: dict[str, Any]) -> bool:
    """Whether ``value`` is a base64 ``{content, content_type}`` object (written media)."""
    return len(value) == 2 and "content_type" in value and isinstance(value.get("content"), str)


def _media_without_bytes(media: dict[str, Any]) -> dict[str, Any]:
    """A base64 ``{content, content_type}`` object as its type and size."""
    content = media["content"]
    size = len(content) * 3 // 4 - content[-2:].count("=")
    return {"content_type": media["content_type"], "size": size, "stored": False}


def _uri_without_bytes(uri: str) -> str:
    """A ``data:`` URI as its head and the size of its payload."""
    head, _, payload = uri.partition(",")
    size = len(payload)
    if head.endswith(";base64"):
        size = size * 3 // 4 - payload[-2:].count("=")
    return f"{head},<{size} bytes not stored>"


def to_json_text(data: Any) -> str:
    """Compact JSON text for plain data."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text, raising ValidationError with the position of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", value=None
        ) from None
    except (TypeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Invalid JSON: {exc}", value=None) from None
