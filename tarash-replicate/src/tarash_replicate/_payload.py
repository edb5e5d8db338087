"""From a unified request to a Replicate prediction's ``input``: model ids, the table and schema
mappings, and the checks that refuse an impossible request before anything billed is sent."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.field_mappers import FieldMapper, apply_field_mappers, passthrough_field_mapper
from tarash.tarash_gateway.plugin import Modality

from ._spec import PROVIDER

__all__ = ["ModelRef", "build_input", "check_against_schema", "parse_model", "schema_mapping"]

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_MODEL = re.compile(rf"^(?P<owner>{_SEGMENT})/(?P<name>{_SEGMENT})(?::(?P<version>[0-9a-f]{{64}}))?$")
_VERSION = re.compile(r"^[0-9a-f]{64}$")

#: Unified request fields, per modality, and the value meaning "not set".
_FIELDS: dict[str, dict[str, Any]] = {
    "video": {
        "duration_seconds": None,
        "resolution": None,
        "aspect_ratio": None,
        "generate_audio": None,
        "image_list": [],
        "video": None,
        "seed": None,
        "negative_prompt": None,
        "enhance_prompt": None,
        "number_of_videos": 1,
    },
    "image": {
        "negative_prompt": None,
        "size": None,
        "quality": None,
        "style": None,
        "n": 1,
        "image_list": [],
        "mask_image": None,
        "seed": None,
        "aspect_ratio": None,
    },
}


@attrs.frozen
class ModelRef:
    """A model as Replicate addresses it.

    Attributes:
        model: the id as given.
        slug: ``owner/name`` (``None`` for a bare version id).
        version: the 64-hex version id, if one was given.
    """

    model: str
    slug: str | None
    version: str | None

    @property
    def create_path(self) -> str:
        """Official models are run by name; a version goes to ``/v1/predictions``."""
        if self.version is None:
            return f"/v1/models/{self.slug}/predictions"
        return "/v1/predictions"


def parse_model(model: str) -> ModelRef:
    """``owner/name``, ``owner/name:<version>`` or a bare 64-hex version id."""
    if _VERSION.match(model):
        return ModelRef(model=model, slug=None, version=model)
    match = _MODEL.match(model)
    if match is None:
        raise ValidationError(
            f"{model!r} is not a Replicate model: expected owner/name (an official model), "
            "owner/name:<64-hex version> or a version id",
            field="model",
            value=model,
            provider=PROVIDER,
            model=model,
        )
    slug = f"{match['owner']}/{match['name']}"
    return ModelRef(model=model, slug=slug, version=match["version"])


def _is_set(value: Any, unset: Any) -> bool:
    return value != unset and value is not None


def _jsonable(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{path} must be a finite number, got {value!r}", field=path, value=value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ValidationError(
        f"{path} cannot be sent to Replicate: {type(value).__name__} is not JSON "
        "(use a URL, MediaContent or plain JSON values)",
        field=path,
        value=type(value).__name__,
    )


def build_input(
    mapping: Mapping[str, FieldMapper],
    request: Any,
    modality: Modality,
    model: str,
    *,
    required_roles: tuple[str, ...] = (),
    accepted_roles: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The prediction ``input`` for ``request`` under ``mapping`` (media already URLs).

    A unified field that is set but that no mapper reads is refused: it would otherwise be
    dropped silently (pass a model input Tarash does not model in ``extra_params``).
    """
    read = {mapper.source_field for mapper in mapping.values()}
    for field, unset in _FIELDS[modality].items():
        if field not in read and _is_set(getattr(request, field), unset):
            raise ValidationError(
                f"{model} has no input for {field}; pass the model's own input in extra_params",
                field=field,
                value=getattr(request, field),
                provider=PROVIDER,
                model=model,
            )
    roles = {image.type for image in request.image_list}
    for role in sorted(roles - set(accepted_roles)):
        if "image_list" in read:
            raise ValidationError(
                f"image_list: {model} takes no image with role {role!r}; "
                f"accepted roles: {', '.join(accepted_roles)}",
                field="image_list",
                value=role,
                allowed=accepted_roles,
                provider=PROVIDER,
                model=model,
            )
    for role in required_roles:
        if role not in roles:
            raise ValidationError(
                f"{model} needs an image with role {role!r} in image_list",
                field="image_list",
                value=sorted(roles),
                allowed=required_roles,
                provider=PROVIDER,
                model=model,
            )
    body = apply_field_mappers(mapping, request, model=model)
    body.update(request.extra_params)
    return {str(k): _jsonable(v, f"input.{k}") for k, v in body.items()}


# ----------------------------------------------------------------------------------------------
# Models in no table: the model's published OpenAPI schema
# ----------------------------------------------------------------------------------------------

#: Unified field -> the input names a model's schema commonly uses for it, first match wins.
_SCHEMA_NAMES: dict[str, tuple[str, ...]] = {
    "duration_seconds": ("duration",),
    "aspect_ratio": ("aspect_ratio",),
    "resolution": ("resolution",),
    "seed": ("seed",),
    "negative_prompt": ("negative_prompt",),
    "generate_audio": ("generate_audio",),
    "n": ("num_outputs",),
}
_SCHEMA_FRAMES: dict[str, tuple[str, ...]] = {
    "first_frame": ("image", "start_image", "first_frame_image", "input_image"),
    "last_frame": ("last_frame", "end_image", "last_frame_image"),
    "reference": ("image", "input_image", "start_image"),
}


def input_schema(openapi: Any) -> dict[str, Any] | None:
    """The ``Input`` object schema of a version's ``openapi_schema`` (``None`` if absent)."""
    if not isinstance(openapi, Mapping):
        return None
    schemas = openapi.get("components", {}).get("schemas", {})
    found = schemas.get("Input") if isinstance(schemas, Mapping) else None
    if not isinstance(found, Mapping) or not isinstance(found.get("properties"), Mapping):
        return None
    return {
        "properties": dict(found["properties"]),
        "required": list(found.get("required") or ()),
        "all": schemas,
    }


def _enum(prop: Mapping[str, Any], schemas: Mapping[str, Any]) -> tuple[Any, ...] | None:
    if isinstance(prop.get("enum"), list):
        return tuple(prop["enum"])
    for part in prop.get("allOf") or ():
        ref = part.get("$ref", "") if isinstance(part, Mapping) else ""
        target = schemas.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/schemas/") else None
        if isinstance(target, Mapping) and isinstance(target.get("enum"), list):
            return tuple(target["enum"])
    return None


def _checked(source: str, allowed: tuple[Any, ...] | None) -> FieldMapper:
    def convert(_request: Any, value: Any) -> Any:
        if value is None or (source == "n" and value == 1):
            return None
        if allowed is not None and value not in allowed:
            raise ValidationError(
                f"{source}={value!r} is not allowed; allowed values: {', '.join(map(str, allowed))}",
                field=source,
                value=value,
                allowed=allowed,
            )
        return value

    return FieldMapper(source, convert)


def _frame_from_schema(role: str) -> FieldMapper:
    def convert(request: Any, _value: Any) -> Any:
        found = [image.image for image in request.image_list if image.type == role]
        if len(found) > 1:
            raise ValidationError(
                f"image_list: at most one image with role {role!r}, got {len(found)}",
                field="image_list",
                value=len(found),
            )
        return found[0] if found else None

    return FieldMapper("image_list", convert)


def schema_mapping(schema: Mapping[str, Any]) -> tuple[dict[str, FieldMapper], tuple[str, ...]]:
    """The mapping derived from an ``Input`` schema, and the image roles it takes."""
    props: Mapping[str, Any] = schema["properties"]
    mapping: dict[str, FieldMapper] = {}
    if "prompt" in props:
        mapping["prompt"] = passthrough_field_mapper("prompt")
    for source, names in _SCHEMA_NAMES.items():
        name = next((n for n in names if n in props), None)
        if name is not None:
            mapping[name] = _checked(source, _enum(props[name], schema["all"]))
    roles = []
    for role, names in _SCHEMA_FRAMES.items():
        name = next((n for n in names if n in props and n not in mapping), None)
        if name is not None:
            mapping[name] = _frame_from_schema(role)
            roles.append(role)
    return mapping, tuple(roles)


def check_against_schema(body: Mapping[str, Any], schema: Mapping[str, Any], model: str) -> None:
    """Refuse a missing required input or a value outside an input's enum (nothing is sent)."""
    props: Mapping[str, Any] = schema["properties"]
    for name in schema["required"]:
        if name not in body:
            raise ValidationError(
                f"{model} requires the input {name!r} (pass it in extra_params)",
                field=f"input.{name}",
                provider=PROVIDER,
                model=model,
            )
    for name, value in body.items():
        prop = props.get(name)
        allowed = _enum(prop, schema["all"]) if isinstance(prop, Mapping) else None
        if allowed is not None and value not in allowed:
            raise ValidationError(
                f"input.{name}={value!r} is not allowed by {model}'s schema; allowed values: "
                f"{', '.join(map(str, allowed))}",
                field=f"input.{name}",
                value=value,
                allowed=allowed,
                provider=PROVIDER,
                model=model,
            )
