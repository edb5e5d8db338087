"""The one cattrs converter that builds Tarash records from plain JSON data.

Writing records as plain data is ``_plain`` (driven by the values, no cattrs). Reading them back
is this converter, built on ``cattrs.preconf.json`` (ISO datetimes) with these rules on top:

* bytes (``MediaContent.content``) are base64 strings; ``Decimal`` (costs, prices) is a decimal
  string, so amounts stay exact;
* structuring is strict: a JSON string is never accepted where a number or a boolean is
  expected, nor a string where a list is;
* ``api_key`` is never read back: configs come back with ``api_key=None``;
* requests are built through their ``__init__``, so unknown keys land in ``extra_params``;
* exceptions (``MockResponse.error``, ``JobStatus.error``) are restored from their qualified type
  only when they are Tarash or built-in exceptions (loading data never imports code);
* every failure becomes one :class:`~tarash.tarash_gateway.exceptions.ValidationError` whose
  message lists each problem with its path (``invalid value for type, expected int @ $.seed``):
  callers go through ``_codec.structure``;
* a field whose type depends on the rest of the data says so itself: its attrs metadata maps
  ``STRUCTURE_AS`` (``"tarash.structure_as"``) to ``f(data) -> type`` (a ``JobHandle``'s config is
  a video or an image config by its job's modality). So this module knows no class above the
  models, and ``jobs`` can be serialised without this module importing it.

``cattrs`` is imported only by this module and ``_codec``, which nothing imports at package import
time.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import types
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin

import attrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.preconf.json import JsonConverter, make_converter

from . import exceptions as tarash_exceptions
from .exceptions import TarashException, ValidationError, _rebuild
from .models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from .plugin import JobRef

T = TypeVar("T")

__all__ = ["CONVERTER", "STRUCTURE_AS"]

#: The attrs metadata key of a field whose type depends on the data: ``f(data) -> type``.
STRUCTURE_AS = "tarash.structure_as"

_API_KEY_REFUSED = (
    "api_key is never read from serialised data; pass api_key= when loading, set it on the "
    "config, or set the provider's environment variable"
)
_EXCEPTION_MODULES = {"builtins": builtins, tarash_exceptions.__name__: tarash_exceptions}


class _Invalid(ValueError):
    """A structuring failure whose message is shown as is."""


@attrs.frozen
class _Spec:
    """How one attrs class is structured."""

    extras: bool = False
    refused: Mapping[str, str] = attrs.field(factory=dict)
    field_hooks: Mapping[str, Callable[[Any, Mapping[str, Any]], Any]] = attrs.field(factory=dict)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _note(exc: BaseException, note: str) -> BaseException:
    exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
    return exc


# ----------------------------------------------------------------------------------------------
# Strict leaf hooks
# ----------------------------------------------------------------------------------------------


def _structure_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_json_kind(value)}")
    return value


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_json_kind(value)}")
    return value


def _structure_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_json_kind(value)}")
    return value


def _structure_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_json_kind(value)}")
    return value


def _structure_bytes(value: Any, _type: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"expected base64 text, got {_json_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("invalid base64 content") from None


def _structure_decimal(value: Any, _type: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {_json_kind(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"expected a decimal string, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite decimal, got {value!r}")
    return number


def _is_literal(type_: Any) -> bool:
    return get_origin(type_) is Literal


def _literal_hook(type_: Any) -> Callable[[Any, Any], Any]:
    allowed = get_args(type_)

    def structure(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"{value!r} is not one of {allowed!r}")
        return value

    return structure


def _is_union(type_: Any) -> bool:
    return get_origin(type_) in (Union, types.UnionType)


def _is_media_union(type_: Any) -> bool:
    return _is_union(type_) and MediaContent in get_args(type_)


def _media_hook(type_: Any) -> Callable[[Any, Any], Any]:
    nullable = type(None) in get_args(type_)

    def structure(value: Any, _type: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            return CONVERTER.structure(value, MediaContent)
        raise ValueError(f"expected a URL or media object, got {_json_kind(value)}")

    return structure


def _is_sequence(type_: Any) -> bool:
    origin = get_origin(type_)
    if origin is list:
        return True
    args = get_args(type_)
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis


def _sequence_hook(type_: Any) -> Callable[[Any, Any], Any]:
    origin = get_origin(type_)
    item = get_args(type_)[0]

    def structure(value: Any, _type: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {_json_kind(value)}")
        items: list[Any] = []
        errors: list[Exception] = []
        for index, element in enumerate(value):
            try:
                items.append(CONVERTER.structure(element, item))
            except Exception as exc:
                note = IterableValidationNote(f"Structuring {type_!r} @ index {index}", index, item)
                errors.append(cast("Exception", _note(exc, note)))
        if errors:
            raise IterableValidationError(f"While structuring {type_!r}", errors, type_)
        return origin(items)

    return structure


# ----------------------------------------------------------------------------------------------
# Exceptions
# ----------------------------------------------------------------------------------------------


def _is_exception(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, BaseException)


def _structure_exception(value: Any, _type: Any) -> BaseException:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an exception object, got {_json_kind(value)}")
    qualified = value.get("type")
    message = value.get("message", "")
    if not isinstance(qualified, str) or not isinstance(message, str):
        raise _Invalid("an exception needs a string 'type' and 'message'")
    module_name, _, name = qualified.rpartition(".")
    module = _EXCEPTION_MODULES.get(module_name)
    cls: Any = getattr(module, name, None) if module is not None else None
    if not _is_exception(cls):
        raise _Invalid(
            f"unsupported exception type {qualified!r}: only Tarash and built-in exceptions can be restored"
        )
    if issubclass(cls, TarashException):
        attributes = value.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise _Invalid("exception 'attributes' must be an object")
        state = {
            key: item for key, item in attributes.items() if isinstance(key, str) and not key.startswith("__")
        }
        return _rebuild(cls, {"execution_metadata": None, **state, "message": message})
    return cast("BaseException", cls(message))


# ----------------------------------------------------------------------------------------------
# attrs classes
# ----------------------------------------------------------------------------------------------


_CONFIG_SPEC = _Spec(refused={"api_key": _API_KEY_REFUSED})
#: How the models are structured, their subclasses included.
SPECS: dict[type[Any], _Spec] = {
    VideoGenerationConfig: _CONFIG_SPEC,
    ImageGenerationConfig: _CONFIG_SPEC,
    VideoGenerationRequest: _Spec(extras=True),
    ImageGenerationRequest: _Spec(extras=True),
}
#: Names that annotations use without their module importing them at run time (``JobHandle.job``:
#: the gateway module keeps the lifecycle records lazy for discovery).
_LOCALNS = {"TarashException": TarashException, "JobRef": JobRef}


def structure_fields(
    cls: type[Any], data: Any, field_types: Mapping[str, Any], required: set[str], spec: _Spec
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Structure ``data``'s known keys by ``field_types``; returns (fields, extra keys).

    Raises ClassValidationError carrying every problem, each with its attribute note.
    """
    if not isinstance(data, Mapping):
        raise _Invalid(f"expected an object, got {_json_kind(data)}")
    kwargs: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    errors: list[Exception] = []
    for key, value in data.items():
        if key in spec.refused:
            errors.append(
                cast(
                    "Exception",
                    _note(
                        _Invalid(spec.refused[key]),
                        AttributeValidationNote(f"Structuring {cls.__name__} @ {key}", key, None),
                    ),
                )
            )
        elif key in field_types:
            hook = spec.field_hooks.get(key)
            try:
                kwargs[key] = hook(value, data) if hook else CONVERTER.structure(value, field_types[key])
            except Exception as exc:
                note = AttributeValidationNote(f"Structuring {cls.__name__} @ {key}", key, field_types[key])
                errors.append(cast("Exception", _note(exc, note)))
        else:
            extras[key] = value
    for name in sorted(required - set(data)):
        note = AttributeValidationNote(f"Structuring {cls.__name__} @ {name}", name, field_types[name])
        errors.append(cast("Exception", _note(KeyError(name), note)))
    if extras and not spec.extras:
        errors.append(ForbiddenExtraKeysError(None, cls, set(extras)))
    if errors:
        raise ClassValidationError(f"While structuring {cls.__name__}", errors, cls)
    return kwargs, extras


def build(cls: type[T], kwargs: Mapping[str, Any]) -> T:
    """``cls(**kwargs)``, turning the model's own ValidationError into an error with a path."""
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        if exc.field:
            note = AttributeValidationNote(f"Structuring {cls.__name__} @ {exc.field}", exc.field, None)
            raise ClassValidationError(
                f"While structuring {cls.__name__}", [cast("Exception", _note(exc, note))], cls
            ) from None
        raise


def _attrs_structure_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
    fields = attrs.fields(attrs.resolve_types(cls, localns=_LOCALNS))
    field_types = {f.alias: f.type for f in fields}
    required = {f.alias for f in fields if f.default is attrs.NOTHING}
    spec = next((spec for base, spec in SPECS.items() if issubclass(cls, base)), _Spec())
    typed_by_data = {f.alias: f.metadata[STRUCTURE_AS] for f in fields if STRUCTURE_AS in f.metadata}
    if typed_by_data:
        hooks = {
            name: (lambda value, data, type_of=type_of: CONVERTER.structure(value, type_of(data)))
            for name, type_of in typed_by_data.items()
        }
        spec = attrs.evolve(spec, field_hooks={**spec.field_hooks, **hooks})

    def structure(data: Any, _type: Any) -> Any:
        kwargs, extras = structure_fields(cls, data, field_types, required, spec)
        return build(cls, {**kwargs, **extras})

    return structure


def _make() -> JsonConverter:
    converter = make_converter()
    converter.register_structure_hook(bytes, _structure_bytes)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_factory(_is_literal, _literal_hook)
    converter.register_structure_hook_factory(_is_media_union, _media_hook)
    converter.register_structure_hook_factory(_is_sequence, _sequence_hook)
    converter.register_structure_hook_factory(_is_exception, lambda _t: _structure_exception)
    converter.register_structure_hook_factory(attrs.has, _attrs_structure_hook)
    return converter


CONVERTER = _make()
