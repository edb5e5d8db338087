"""attrs validators and converters that raise Tarash's ValidationError naming the field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._redact import redact
from .exceptions import ValidationError

__all__ = [
    "IMAGE_ROLES",
    "STATUSES",
    "Validator",
    "aspect_ratio",
    "binary",
    "boolean",
    "describe",
    "fail",
    "mapping",
    "number",
    "one_of",
    "pattern",
    "resolution",
    "string",
    "to_int_or_none",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_ASPECT = re.compile(r"auto|[0-9]{1,2}:[0-9]{1,2}")
_RESOLUTION = re.compile(r"[0-9]{3,4}p|[1-8]k")
IMAGE_ROLES = ("reference", "first_frame", "last_frame", "asset", "style")
STATUSES = ("queued", "processing", "completed", "failed")


def _owner(inst: Any) -> str:
    return type(inst).__name__


def describe(value: Any, limit: int = 80) -> str:
    """A short repr of ``value`` for messages, with secret-named keys redacted; never raises.

    Hostile values (ints too long for ``repr``, deeply nested lists, objects whose ``__repr__``
    raises) are shown by type name only.
    """
    try:
        shown = repr(redact(value) if isinstance(value, (Mapping, list, tuple)) else value)
    except Exception:
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def fail(
    inst: Any, attr: attrs.Attribute[Any], value: Any, expected: str, allowed: Sequence[Any] | None = None
) -> ValidationError:
    shown = describe(value)
    text = f"{_owner(inst)}.{attr.name}: expected {expected}, got {shown}"
    if allowed is not None:
        text += f" (allowed: {', '.join(map(str, allowed))})"
    return ValidationError(text, field=attr.name, value=value, allowed=allowed)


def string(*, optional: bool = False, nonempty: bool = False, max_len: int = 100_000) -> Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise fail(inst, attr, value, "a string")
        if nonempty and not value.strip():
            raise fail(inst, attr, value, "a non-empty string")
        if len(value) > max_len:
            raise fail(inst, attr, f"<{len(value)} characters>", f"at most {max_len} characters")
        if "\x00" in value:
            raise fail(inst, attr, value, "a string without NUL characters")

    return check


def number(
    *,
    optional: bool = False,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(inst, attr, value, kind)
        if integer and not isinstance(value, int):
            raise fail(inst, attr, value, kind)
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(inst, attr, value, f"a finite {kind[2:] if kind.startswith('a ') else kind}")
        if positive and value <= 0:
            raise fail(inst, attr, value, f"{kind} > 0")
        if minimum is not None and value < minimum:
            raise fail(inst, attr, value, f"{kind} >= {minimum}")
        if maximum is not None and value > maximum:
            raise fail(inst, attr, value, f"{kind} <= {maximum}")

    return check


def boolean(*, optional: bool = True) -> Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, bool):
            raise fail(inst, attr, value, "true or false")

    return check


def one_of(allowed: Sequence[Any], *, optional: bool = True) -> Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value not in allowed:
            raise fail(inst, attr, value, "one of the allowed values", allowed)

    return check


def pattern(regex: re.Pattern[str], description: str) -> Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise fail(inst, attr, value, description)

    return check


aspect_ratio = pattern(_ASPECT, "an aspect ratio like '16:9' or 'auto'")
resolution = pattern(_RESOLUTION, "a resolution like '720p', '1080p' or '4k'")


def binary(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    """Only ``bytes`` (attrs' ``instance_of`` would raise TypeError, not ValidationError)."""
    if not isinstance(value, bytes):
        raise fail(inst, attr, value, "bytes")


def mapping(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise fail(inst, attr, value, "a mapping with string keys")


def to_int_or_none(value: Any) -> Any:
    """Accept ``5``, ``5.0`` and ``"5"`` for integer fields; leave anything else for the validator.

    Only ASCII digit strings convert (``"²"`` and ``"١٢"`` are left for the validator to reject),
    and a digit string too long for ``int()`` is left as is too.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        try:
            return int(value.strip())
        except ValueError:
            return value
    return value
