"""A unified image request checked against the model table and turned into an Images API call.

Everything here runs before the flow's first ``yield``: an impossible request raises
``ValidationError`` and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import ImageGenerationConfig, ImageGenerationRequest, MediaContent
from tarash.tarash_gateway.utils import parse_data_uri

from . import _models as m

#: ``extra_params`` the generations endpoint takes (the SDK's names).
GENERATE_EXTRAS = (
    "background",
    "complexity",
    "frame_count",
    "frame_duration_ms",
    "moderation",
    "output_compression",
    "output_format",
    "safety_identifier",
    "user",
)
#: ``extra_params`` the edits endpoint takes.
EDIT_EXTRAS = (*GENERATE_EXTRAS, "input_fidelity")
#: Unified request fields the Images API has no parameter for.
UNSUPPORTED = {
    "negative_prompt": "describe what to avoid in the prompt",
    "style": "describe the style in the prompt (style is a retired DALL-E parameter)",
    "seed": "the Images API takes no seed",
}
INPUT_TYPES = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}
OUTPUT_TYPES = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
#: Image roles that make no sense for an image edit.
FRAME_ROLES = ("first_frame", "last_frame")

Source = MediaContent | str


@attrs.frozen(kw_only=True)
class Call:
    """One Images API call, checked: where it goes and what it carries.

    ``images`` are the multipart parts still to attach: ``(part name, request field, MediaContent
    or http(s) URL)``; empty for a generation, which sends ``body`` as JSON.
    """

    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    images: tuple[tuple[str, str, Source], ...]
    output_format: str
    model: str

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    def form(self) -> dict[str, str]:
        """The body as multipart form fields (strings, as openai-python sends them)."""
        return {name: _form_value(value) for name, value in self.body.items()}


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _invalid(message: str, field: str, value: Any = None, allowed: Any = None) -> ValidationError:
    return ValidationError(message, field=field, value=value, allowed=allowed)


def _one_of(field: str, value: Any, allowed: tuple[Any, ...], model: str) -> Any:
    if value not in allowed or isinstance(value, bool):
        raise _invalid(
            f"{field}={value!r} is not accepted by {model}; allowed: {allowed}", field, value, allowed
        )
    return value


def model_entry(model_id: str) -> m.ImageModel:
    """The table entry of ``model_id`` (ValidationError naming the retirement, or the known ids)."""
    if model_id in m.RETIRED:
        raise _invalid(
            f"model {model_id!r} is retired: {m.RETIRED[model_id]}", "model", model_id, tuple(m.MODELS)
        )
    try:
        return m.MODELS[model_id]
    except KeyError:
        raise _invalid(
            f"model {model_id!r} is not a gpt-image-2.x model tarash-openai knows; "
            f"known: {', '.join(m.MODELS)}",
            "model",
            model_id,
            tuple(m.MODELS),
        ) from None


def check_size(size: str, model: m.ImageModel) -> str:
    """``size`` if ``model`` accepts it (standard sizes, or any valid WIDTHxHEIGHT on 2/2.5)."""
    if size in m.STANDARD_SIZES:
        return size
    if not model.custom_sizes:
        raise _invalid(
            f"size={size!r} is not accepted by {model.id}; allowed: {m.STANDARD_SIZES}",
            "size",
            size,
            m.STANDARD_SIZES,
        )
    width_text, sep, height_text = size.partition("x")
    if not (sep and width_text.isdigit() and height_text.isdigit()):
        raise _invalid(f"size={size!r} must be 'auto' or WIDTHxHEIGHT, e.g. '1536x864'", "size", size)
    width, height = int(width_text), int(height_text)
    problems = []
    if width % m.SIZE_STEP or height % m.SIZE_STEP or not width or not height:
        problems.append(f"both sides must be positive multiples of {m.SIZE_STEP}")
    elif not 1 / 3 <= width / height <= 3:
        problems.append("the aspect ratio must be between 1:3 and 3:1")
    if max(width, height) > m.MAX_EDGE or width * height > m.MAX_PIXELS:
        problems.append("the largest size is 3840x2160")
    if problems:
        raise _invalid(f"size={size!r} is not accepted by {model.id}: {'; '.join(problems)}", "size", size)
    return size


def _size(request: ImageGenerationRequest, model: m.ImageModel) -> str | None:
    if request.size is not None and request.aspect_ratio is not None:
        raise _invalid("give size or aspect_ratio, not both", "aspect_ratio", request.aspect_ratio)
    if request.size is not None:
        return check_size(request.size, model)
    if request.aspect_ratio is not None:
        aspects = model.aspects
        _one_of("aspect_ratio", request.aspect_ratio, tuple(aspects), model.id)
        return aspects[request.aspect_ratio]
    return None


def _extras(request: ImageGenerationRequest, model: m.ImageModel, *, edit: bool) -> dict[str, Any]:
    extras = dict(request.extra_params)
    known = EDIT_EXTRAS if edit else GENERATE_EXTRAS
    for name in extras:
        if name not in known:
            hint = " (edits only: give image_list)" if name in EDIT_EXTRAS else ""
            raise _invalid(
                f"extra_params[{name!r}] is not an Images API parameter tarash-openai sends{hint}; "
                f"known: {', '.join(known)}",
                f"extra_params.{name}",
                extras[name],
                known,
            )
    output_format = extras.get("output_format", "png")
    _one_of("output_format", output_format, m.OUTPUT_FORMATS, model.id)
    for name, allowed in (
        ("background", m.BACKGROUNDS),
        ("moderation", m.MODERATION),
        ("complexity", m.COMPLEXITY),
        ("input_fidelity", model.input_fidelity),
    ):
        if name in extras:
            _one_of(name, extras[name], allowed, model.id)
    if extras.get("background") == "transparent" and output_format not in ("png", "webp"):
        raise _invalid(
            f"background='transparent' needs output_format 'png' or 'webp', not {output_format!r}",
            "background",
            "transparent",
        )
    if "output_compression" in extras:
        if output_format not in ("jpeg", "webp"):
            raise _invalid(
                "output_compression applies to output_format 'jpeg' or 'webp' only",
                "output_compression",
                extras["output_compression"],
            )
        _one_of("output_compression", extras["output_compression"], tuple(range(101)), model.id)
    for name in ("frame_count", "frame_duration_ms"):
        if name in extras and output_format != "gif":
            raise _invalid(f"{name} applies to output_format 'gif' only", name, extras[name])
    if "frame_count" in extras:
        _one_of("frame_count", extras["frame_count"], m.FRAME_COUNTS, model.id)
    duration = extras.get("frame_duration_ms")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int) or duration < 1):
        raise _invalid("frame_duration_ms must be a positive integer", "frame_duration_ms", duration)
    if output_format == "svg" and request.n != 1:
        raise _invalid("output_format 'svg' makes one image: n must be 1", "n", request.n, (1,))
    for name in ("safety_identifier", "user"):
        if name in extras and not isinstance(extras[name], str):
            raise _invalid(f"{name} must be a string", name, extras[name])
    return extras


def _source(value: Any, field: str) -> Source:
    """An input image as MediaContent (given or decoded from a data: URI) or an https URL."""
    if isinstance(value, MediaContent):
        media = value
    elif value.startswith("data:"):
        media = parse_data_uri(value)
    elif value.startswith("https://") or value.startswith("http://"):
        return str(value)
    else:
        raise _invalid(
            f"{field} must be MediaContent, a data: URI or an http(s) URL (the plugin reads no files)",
            field,
            value,
        )
    check_media_type(media, field)
    return media


def check_media_type(media: MediaContent, field: str) -> None:
    allowed = ("image/png",) if field == "mask_image" else tuple(INPUT_TYPES)
    if media.content_type not in allowed:
        raise _invalid(
            f"{field} must be {' or '.join(allowed)}, not {media.content_type!r}",
            field,
            media.content_type,
            allowed,
        )


def _images(request: ImageGenerationRequest, output_format: str) -> tuple[tuple[str, str, Source], ...]:
    if len(request.image_list) > m.MAX_EDIT_IMAGES:
        raise _invalid(
            f"at most {m.MAX_EDIT_IMAGES} input images, got {len(request.image_list)}",
            "image_list",
            len(request.image_list),
        )
    # As openai-python sends them: one image is the part ``image``, several are one ``image[]``
    # part each (extract_files(paths=[["image"], ["image", "<array>"], ["mask"]])).
    part = "image" if len(request.image_list) == 1 else "image[]"
    parts: list[tuple[str, str, Source]] = []
    for index, item in enumerate(request.image_list):
        if item.type in FRAME_ROLES:
            raise _invalid(
                f"image_list[{index}] has role {item.type!r}; an image edit takes reference images",
                f"image_list[{index}].type",
                item.type,
            )
        field = f"image_list[{index}]"
        parts.append((part, field, _source(item.image, field)))
    if request.mask_image is not None:
        if not parts:
            raise _invalid("mask_image needs an image to edit in image_list", "mask_image")
        if output_format == "gif":
            raise _invalid("output_format 'gif' takes no mask", "mask_image")
        parts.append(("mask", "mask_image", _source(request.mask_image, "mask_image")))
    return tuple(parts)


def plan(
    config: ImageGenerationConfig, request: ImageGenerationRequest, *, azure: bool, base_url: str
) -> Call:
    """The checked call for ``request`` (``ValidationError`` if the model cannot do it)."""
    model = model_entry(config.model)
    if not request.prompt.strip():
        raise _invalid("prompt must not be empty", "prompt", request.prompt)
    if len(request.prompt) > m.MAX_PROMPT_CHARS:
        raise _invalid(
            f"prompt is longer than {m.MAX_PROMPT_CHARS} characters", "prompt", len(request.prompt)
        )
    for name, hint in UNSUPPORTED.items():
        if getattr(request, name) is not None:
            raise _invalid(f"{name} is not supported by the Images API: {hint}", name, getattr(request, name))
    edit = bool(request.image_list) or request.mask_image is not None
    extras = _extras(request, model, edit=edit)
    images = _images(request, extras.get("output_format", "png"))
    _one_of("n", request.n, m.COUNTS, model.id)
    size = _size(request, model)
    quality = request.quality
    if quality is not None:
        _one_of("quality", quality, model.qualities, model.id)

    provider_config = config.provider_config
    deployment = provider_config.get("deployment") or config.model
    body: dict[str, Any] = {
        "model": deployment if azure else model.id,
        "prompt": request.prompt,
        "n": request.n,
    }
    if size is not None:
        body["size"] = size
    if quality is not None:
        body["quality"] = quality
    body.update(extras)

    endpoint = "edits" if edit else "generations"
    if azure:
        if not base_url:
            raise _invalid(
                "azure-openai needs the resource endpoint in config.base_url, "
                "e.g. 'https://my-resource.openai.azure.com'",
                "base_url",
            )
        if not config.api_version:
            raise _invalid(
                "azure-openai needs config.api_version (the api-version query parameter)", "api_version"
            )
        if not isinstance(deployment, str) or "/" in deployment:
            raise _invalid(
                "provider_config['deployment'] must be a deployment name", "deployment", deployment
            )
        return Call(
            path=f"/openai/deployments/{deployment}/images/{endpoint}",
            params={"api-version": config.api_version},
            headers={},
            body=body,
            images=images,
            output_format=extras.get("output_format", "png"),
            model=model.id,
        )
    headers = {
        header: str(provider_config[key])
        for key, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project"))
        if provider_config.get(key)
    }
    return Call(
        path=f"/images/{endpoint}",
        params={},
        headers=headers,
        body=body,
        images=images,
        output_format=extras.get("output_format", "png"),
        model=model.id,
    )
