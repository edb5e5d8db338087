"""Derive a fal model's mapping from its published OpenAPI document, deterministically.

fal publishes each model's schema at
``https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>`` (no key needed): the submit
path ``POST /<id>`` takes ``components.schemas.<Name>Input``, whose properties carry ``enum``,
``minimum``/``maximum``, ``anyOf``/``allOf``/``$ref`` and ``required``. :func:`derive_spec` reads
it into a :data:`ModelSpec`, a small JSON record (what ``tarash fal add-model`` shows and saves),
and :func:`family_from_spec` turns that record into a registry family. The same document always
gives the same record: field names are matched against fixed candidate lists, in order.

What is derived, and from which fal field (the first present wins):

* prompt: ``prompt``; negative prompt, seed: ``negative_prompt``, ``seed``;
* duration: ``duration``; its unit from the schema (``"8s"`` enum ->
  ``seconds_suffix``, ``"5"`` -> ``string``, an integer -> ``integer``) and its allowed seconds
  from the enum, else from ``minimum``..``maximum``;
* aspect ratio, resolution: ``aspect_ratio``, ``resolution`` (allowed values from the enum;
  none listed -> sent unchecked);
* audio: ``generate_audio``, ``generate_audio_switch``, ``enable_audio``, ``with_audio``;
* image roles: first frame ``first_frame_url``, ``start_image_url``, ``first_image_url``,
  ``image_url``; last frame ``last_frame_url``, ``end_image_url``, ``tail_image_url``,
  ``last_image_url``; references (a list) ``reference_image_urls``, ``image_urls``. Without a
  reference list, ``reference`` images go to the first-frame field (the registry's rule);
* video input: ``video_url``; image models: ``image_size`` or ``aspect_ratio``, ``num_images``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tarash.tarash_gateway.exceptions import ValidationError

__all__ = ["SPEC_VERSION", "ModelSpec", "derive_spec", "family_from_spec", "input_schema"]

#: A derived model record: JSON-safe, keys in a fixed order.
ModelSpec = dict[str, Any]
SPEC_VERSION = 1

_AUDIO = ("generate_audio", "generate_audio_switch", "enable_audio", "with_audio")
_FIRST = ("first_frame_url", "start_image_url", "first_image_url", "image_url")
_LAST = ("last_frame_url", "end_image_url", "tail_image_url", "last_image_url")
_REFERENCES = ("reference_image_urls", "image_urls")
_IMAGE_CATEGORIES = ("text-to-image", "image-to-image")
_MAX_RANGE = 60


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    seen: set[str] = set()
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValidationError(f"unsupported $ref {ref!r} in the OpenAPI document", field="schema")
        seen.add(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        node = target
    return node


def _variants(document: Mapping[str, Any], node: Any) -> list[Mapping[str, Any]]:
    """A property and every branch of its ``anyOf``/``oneOf``/``allOf``, refs resolved."""
    node = _resolve(document, node)
    if not isinstance(node, Mapping):
        return []
    found = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or []:
            found.extend(_variants(document, branch))
    return found


def _enum(document: Mapping[str, Any], node: Any) -> list[Any]:
    values: list[Any] = []
    for variant in _variants(document, node):
        for value in variant.get("enum") or []:
            if value not in values:
                values.append(value)
    return values


def _types(document: Mapping[str, Any], node: Any) -> set[str]:
    return {v["type"] for v in _variants(document, node) if isinstance(v.get("type"), str)}


def input_schema(document: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any]:
    """The submit body's schema: ``POST /<endpoint_id>``'s request body, else the only
    ``components.schemas`` entry whose name ends in ``Input``."""
    post = ((document.get("paths") or {}).get(f"/{endpoint_id}") or {}).get("post") or {}
    body = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    schema = _resolve(document, body.get("schema"))
    if isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping):
        return schema
    schemas = (document.get("components") or {}).get("schemas") or {}
    inputs = [schemas[name] for name in sorted(schemas) if name.endswith("Input")]
    if len(inputs) == 1 and isinstance(inputs[0].get("properties"), Mapping):
        found: Mapping[str, Any] = inputs[0]
        return found
    raise ValidationError(
        f"the OpenAPI document has no input schema for {endpoint_id!r}",
        field="endpoint_id",
        value=endpoint_id,
    )


def _first(properties: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in properties), None)


def _seconds(value: Any) -> int | None:
    text = str(value).strip().removesuffix("s")
    return int(text) if text.isdigit() else None


def _duration(document: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any] | None:
    field = "duration"
    if field not in properties:
        return None
    node = properties[field]
    values = _enum(document, node)
    types = _types(document, node)
    if values:
        seconds = [_seconds(v) for v in values]
        allowed = sorted({s for s in seconds if s is not None})
        texts = [v for v in values if isinstance(v, str)]
        if texts and all(v.endswith("s") for v in texts):
            unit = "seconds_suffix"
        elif texts:
            unit = "string"
        else:
            unit = "integer"
    else:
        unit = "integer" if types & {"integer", "number"} else "string"
        bounds = [v.get(k) for v in _variants(document, node) for k in ("minimum", "maximum")]
        low = next((b for b in bounds[0::2] if isinstance(b, (int, float))), None)
        high = next((b for b in bounds[1::2] if isinstance(b, (int, float))), None)
        allowed = []
        if low is not None and high is not None and 0 <= high - low <= _MAX_RANGE:
            allowed = list(range(int(low), int(high) + 1))
    if not allowed:
        return None
    return {"field": field, "format": unit, "allowed": allowed}


def _choice(document: Mapping[str, Any], properties: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    if name not in properties:
        return None
    values = [v for v in _enum(document, properties[name]) if isinstance(v, str)]
    return {"field": name, "allowed": values or None}


def _images(properties: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    first, last = _first(properties, _FIRST), _first(properties, _LAST)
    references = _first(properties, _REFERENCES)
    frames: dict[str, list[str]] = {}
    if first is not None:
        frames[first] = ["first_frame"] if references else ["first_frame", "reference"]
    if last is not None and last != first:
        frames[last] = ["last_frame"]
    return {"frames": frames, "lists": {references: ["reference"]} if references else {}}


def derive_spec(document: Mapping[str, Any], endpoint_id: str) -> ModelSpec:
    """The mapping of ``endpoint_id`` derived from its OpenAPI ``document``.

    :raises ValidationError: the document has no input schema for ``endpoint_id``.
    """
    schema = input_schema(document, endpoint_id)
    properties: Mapping[str, Any] = schema["properties"]
    metadata = (document.get("info") or {}).get("x-fal-metadata") or {}
    category = str(metadata.get("category") or "")
    modality = "image" if category in _IMAGE_CATEGORIES else "video"
    images = _images(properties)
    image_size = modality == "image" and "image_size" in properties
    return {
        "version": SPEC_VERSION,
        "endpoint_id": endpoint_id,
        "modality": modality,
        "category": category,
        "prompt": "prompt" if "prompt" in properties else None,
        "required": sorted(name for name in schema.get("required") or [] if name in properties),
        "duration": _duration(document, properties) if modality == "video" else None,
        "aspect_ratio": None if image_size else _choice(document, properties, "aspect_ratio"),
        "resolution": _choice(document, properties, "resolution") if modality == "video" else None,
        "image_size": image_size,
        "num_images": modality == "image" and "num_images" in properties,
        "generate_audio": _first(properties, _AUDIO),
        "seed": "seed" if "seed" in properties else None,
        "negative_prompt": "negative_prompt" if "negative_prompt" in properties else None,
        "images": images,
        "video": "video_url" if "video_url" in properties else None,
    }


def family_from_spec(spec: Mapping[str, Any]) -> Any:
    """The registry family (record and mapping) for a derived spec, built with the same helpers
    as the built-in families, so values are checked and formatted the same way."""
    from tarash.tarash_gateway.field_mappers import passthrough_field_mapper

    from . import _registry as registry

    required = tuple(spec["required"])
    images = spec["images"]
    inputs = registry._Inputs(
        frames={field: tuple(roles) for field, roles in images["frames"].items()},
        lists={field: tuple(roles) for field, roles in images["lists"].items()},
        required=tuple(
            f for f in (*images["frames"], *images["lists"], spec["video"] or "") if f in required
        ),
        video=spec["video"],
    )
    knobs = {
        spec[name]: passthrough_field_mapper(name)
        for name in ("generate_audio", "seed", "negative_prompt")
        if spec[name] is not None
    }
    prompt = registry._PROMPT if spec["prompt"] else None
    name = f"{spec['endpoint_id']} (from its schema)"
    description = (
        f"Derived from fal's OpenAPI for {spec['endpoint_id']} ({spec['category'] or 'no category'})."
    )
    aspect, resolution = spec["aspect_ratio"], spec["resolution"]
    for choice, source in ((aspect, "aspect_ratio"), (resolution, "resolution")):
        if choice is not None and not choice["allowed"]:
            knobs[choice["field"]] = passthrough_field_mapper(source)
    if spec["modality"] == "image":
        family = registry._image(
            spec["endpoint_id"],
            name,
            description,
            inputs=inputs,
            size="image_size" if spec["image_size"] else "aspect_ratio",
            aspect_ratios=tuple((aspect or {}).get("allowed") or ()),
            num_images=spec["num_images"],
            fields=knobs,
        )
        if prompt is None:
            family = registry._Family(
                family.record, {k: v for k, v in family.mapping.items() if k != "prompt"}
            )
        return family
    duration = spec["duration"]
    return registry._video(
        spec["endpoint_id"],
        name,
        description,
        inputs=inputs,
        durations=tuple(duration["allowed"]) if duration else (),
        duration_format=duration["format"] if duration else "string",
        aspect_ratios=tuple((aspect or {}).get("allowed") or ()),
        resolutions=tuple((resolution or {}).get("allowed") or ()),
        prompt=prompt,
        fields=knobs,
    )
