"""What callers use of the one converter (:data:`~tarash.tarash_gateway._converters.CONVERTER`):
:func:`structure` builds a record from plain data and turns every failure into one
:class:`~tarash.tarash_gateway.exceptions.ValidationError` listing each problem with its path.
``cattrs`` loads with this module, which nothing imports at package import time (writing records
as plain data needs no cattrs: ``_plain``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.v import format_exception, transform_error

from ._converters import CONVERTER, _Invalid, _is_literal, _is_sequence, _is_union
from .exceptions import ValidationError

T = TypeVar("T")

__all__ = ["structure"]


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
