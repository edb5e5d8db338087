"""What callers use of the one converter (:data:`~tarash.tarash_gateway._converters.CONVERTER`):
:func:`structure` builds a record from plain data and turns every failure into one
:class:`~tarash.tarash_gateway.exceptions.ValidationError` listing each problem with its path;
:func:`unstructure` writes plain JSON data, checked to be plain and with known secrets scrubbed;
:func:`to_json_text` and :func:`parse_json` are the JSON text on either side. ``cattrs`` loads
with this module, which nothing imports at package import time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.v import format_exception, transform_error

from . import _redact
from ._converters import CONVERTER, _Invalid, _is_literal, _is_sequence, _is_union
from .exceptions import ValidationError

T = TypeVar("T")

__all__ = ["parse_json", "structure", "to_json_text", "unstructure"]


def _type_name(type_: Any) -> str:
    if type_ is None:
        return "value"
    if _is_literal(type_):
        return "one of " + ", ".join(repr(a) for a in get_args(type_))
    if _is_union(type_):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(type_))
    if _is_sequence(type_):
        return f"list of {_type_name(get_args(type_)[0])}"
    if get_origin(type_) in (dict, Mapping):
        return "object"
    if type_ is Any:
        return "any JSON value"
    return getattr(type_, "__name__", repr(type_))


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ValidationError):
        message = exc.message
        head, sep, rest = message.partition(": ")
        return rest if sep and exc.field and head.endswith(f".{exc.field}") else message
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, KeyError):
        return f"invalid value for type, expected {_type_name(type_)}"
    return format_exception(exc, type_)


def _first_path(message: str) -> str | None:
    path = message.rpartition(" @ ")[2]
    if path == "$":
        return None
    return path[2:] if path.startswith("$.") else path[1:]


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from plain data; any problem raises ValidationError listing every path."""
    try:
        return CONVERTER.structure(data, cls)
    except (
        ClassValidationError,
        IterableValidationError,
        ValidationError,
        ValueError,
        TypeError,
        KeyError,
    ) as exc:
        messages = transform_error(exc, "$", _format)
        raise ValidationError(
            f"Invalid {getattr(cls, '__name__', cls)}: " + "; ".join(messages),
            field=_first_path(messages[0]),
            value=None,
        ) from None


class _NotPlain(Exception):
    """A value :func:`_plain` cannot write (:func:`_check_plain` then names its path)."""


def _check_plain(value: Any, path: str, finite: bool) -> None:
    if isinstance(value, float) and finite and not math.isfinite(value):
        raise ValidationError(f"Not serialisable: {value!r} @ {path}", field=path, value=None)
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"Not serialisable: non-string key {key!r} @ {path}", field=path, value=None
                )
            _check_plain(item, f"{path}.{key}", finite)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{path}[{index}]", finite)
        return
    raise ValidationError(f"Not serialisable: {type(value).__name__} @ {path}", field=path, value=None)


def _plain(value: Any, scrub: Any, limit: int | None) -> Any:
    """A copy of ``value`` with ``scrub`` (if any) applied to its strings and, with ``limit``,
    media bytes left out (see :func:`unstructure`), made in one pass; raises _NotPlain at the
    first value that is not plain JSON data."""
    if isinstance(value, str):
        if limit is not None and len(value) > limit and value.startswith("data:"):
            value = _uri_without_bytes(value)
        return value if scrub is None else scrub(_redact.REDACTED, value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if limit is not None and not math.isfinite(value):
            raise _NotPlain
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _NotPlain
        if limit is not None and _is_media(value):
            value = _media_without_bytes(value)
        return {key: _plain(item, scrub, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, scrub, limit) for item in value]
    raise _NotPlain


def _is_media(value: dict[str, Any]) -> bool:
    """Whether ``value`` is a base64 ``{content, content_type}`` object (unstructured media)."""
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


def unstructure(obj: Any, *, media_limit: int | None = None) -> Any:
    """Plain JSON data for ``obj`` (API keys omitted, known secrets scrubbed).

    With ``media_limit`` (data to store), media bytes are left out: a base64 ``{content,
    content_type}`` object becomes ``{content_type, size, stored: false}`` and a ``data:`` URI
    longer than ``media_limit`` characters its head and size; and a number that is not finite
    (which JSON cannot hold) is refused like any value that is not plain.
    """
    data = CONVERTER.unstructure(obj)
    pattern = _redact._secret_pattern
    try:
        return _plain(data, None if pattern is None else pattern.sub, media_limit)
    except _NotPlain:
        _check_plain(data, "$", media_limit is not None)  # raises, naming the path
        raise


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
