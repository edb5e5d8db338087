"""What callers use of the one converter (:data:`~tarash.tarash_gateway._converters.CONVERTER`):
:func:`structure` builds a record from plain data and turns every failure into one
:class:`~tarash.tarash_gateway.exceptions.ValidationError` listing each problem with its path;
:func:`unstructure` writes plain JSON data, checked to be plain and with known secrets scrubbed;
:func:`to_json_text` and :func:`parse_json` are the JSON text on either side. ``cattrs`` loads
with this module, which nothing imports at package import time.
"""

from __future__ import annotations

import json
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


def _check_plain(value: Any, path: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"Not serialisable: non-string key {key!r} @ {path}", field=path, value=None
                )
            _check_plain(item, f"{path}.{key}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{path}[{index}]")
        return
    raise ValidationError(f"Not serialisable: {type(value).__name__} @ {path}", field=path, value=None)


def _plain(value: Any, scrub: Any) -> Any:
    """A copy of ``value`` with ``scrub`` (if any) applied to its strings, made in one pass;
    raises _NotPlain at the first value that is not plain JSON data."""
    if isinstance(value, str):
        return value if scrub is None else scrub(_redact.REDACTED, value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _NotPlain
        return {key: _plain(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, scrub) for item in value]
    raise _NotPlain


def unstructure(obj: Any) -> Any:
    """Plain JSON data for ``obj`` (API keys omitted, known secrets scrubbed)."""
    data = CONVERTER.unstructure(obj)
    pattern = _redact._secret_pattern
    try:
        return _plain(data, None if pattern is None else pattern.sub)
    except _NotPlain:
        _check_plain(data, "$")  # raises, naming the path
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
