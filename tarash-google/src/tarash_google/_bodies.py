"""What each route is sent: values checked against the model table, then the JSON body.

Field names follow google-genai's converters (``models.py``: ``_GenerateVideosConfig_to_vertex``,
``_GenerateImagesConfig_to_vertex``, ``_GenerateContentParameters_to_*``) and the Interactions
types (``_gaos/types/interactions``); ``docs/providers/google.md`` lists them with their source.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import MediaContent

from ._models import GoogleModel, Mode

PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")


@attrs.frozen
class Media:
    """An input image as Google takes it: bytes, or a URI Google reads itself (``gs://``)."""

    mime_type: str
    data: bytes | None = attrs.field(default=None, repr=False)
    uri: str | None = None

    def b64(self) -> str:
        return base64.b64encode(self.data or b"").decode("ascii")


def _refuse(field: str, value: Any, why: str, allowed: Any = None) -> ValidationError:
    return ValidationError(f"{field}={value!r}: {why}", field=field, value=value, allowed=allowed)


def check(model: GoogleModel, request: Any, mode: Mode, provider_config: Mapping[str, Any]) -> None:
    """Refuse anything ``model`` cannot take, before a single request is sent."""
    for field, allowed in model.allowed.items():
        value = getattr(request, field, None)
        if value is None or (field in ("number_of_videos", "n") and value == 1):
            continue
        if value not in allowed:
            why = (
                f"{model.id} accepts {', '.join(map(str, allowed))}"
                if allowed
                else f"{model.id} has no such setting"
            )
            raise _refuse(field, value, why, allowed)
    unsupported = {
        "negative_prompt": model.route in ("omni", "gemini_image"),
        "seed": model.route == "veo" and mode == "gemini",
        "generate_audio": model.route != "veo" or mode == "gemini",
        "enhance_prompt": model.route in ("omni", "gemini_image"),
        "quality": model.modality == "image",
        "style": model.modality == "image",
    }
    for field, refused in unsupported.items():
        if refused and getattr(request, field, None) is not None:
            where = "the Gemini Developer API" if mode == "gemini" else "Vertex AI"
            raise _refuse(field, getattr(request, field), f"not supported by {model.id} on {where}")
    if getattr(request, "video", None) is not None:
        raise _refuse("video", "<video>", "video inputs (extension, editing) are not supported yet")
    if getattr(request, "mask_image", None) is not None:
        raise _refuse("mask_image", "<mask>", f"{model.id} takes no mask")
    images = list(getattr(request, "image_list", None) or ())
    for image in images:
        if image.type not in model.image_roles:
            roles = ", ".join(model.image_roles) or "none"
            raise _refuse(
                "image_list", image.type, f"{model.id} takes image roles: {roles}", model.image_roles
            )
        if isinstance(image.image, str) and image.image.startswith("gs://") and mode == "gemini":
            raise _refuse("image_list", image.image, "gs:// URIs are read only by Vertex AI (google-vertex)")
    if len(images) > model.max_images:
        raise _refuse("image_list", len(images), f"{model.id} takes at most {model.max_images} images")
    for role in ("first_frame", "last_frame"):
        if sum(image.type == role for image in images) > 1:
            raise _refuse("image_list", role, "give at most one image of this role")
    person = request.extra_params.get("person_generation")
    if person is not None and person not in PERSON_GENERATION:
        raise _refuse("extra_params.person_generation", person, "unknown value", PERSON_GENERATION)
    gcs = provider_config.get("output_gcs_uri")
    if gcs is not None and (mode == "gemini" or not str(gcs).startswith("gs://")):
        raise _refuse(
            "provider_config.output_gcs_uri", gcs, "a gs:// URI, and only on Vertex AI (google-vertex)"
        )


def media_from(value: Any) -> Media | str:
    """An input image as :class:`Media`, or the http(s) URL the flow must fetch first."""
    if isinstance(value, MediaContent):
        return Media(mime_type=value.content_type, data=value.content)
    text = str(value)
    if text.startswith("gs://"):
        lowered = text.lower()
        mime = (
            "image/png"
            if lowered.endswith(".png")
            else "image/webp"
            if lowered.endswith(".webp")
            else "image/jpeg"
        )
        return Media(mime_type=mime, uri=text)
    if text.startswith("data:"):
        header, _, payload = text.partition(",")
        mime = header[5:].split(";")[0] or "application/octet-stream"
        try:
            data = base64.b64decode(payload, validate=True) if ";base64" in header else payload.encode()
        except (binascii.Error, ValueError):
            raise _refuse("image_list", text[:40], "is not valid base64") from None
        return Media(mime_type=mime, data=data)
    if text.startswith(("http://", "https://")):
        return text
    raise _refuse("image_list", text[:40], "give bytes, a data: URI, an http(s) URL or (Vertex) a gs:// URI")


def _image(media: Media) -> dict[str, Any]:
    """``Image`` as Veo and Imagen take it (``_Image_to_vertex`` / ``_Image_to_mldev``)."""
    if media.uri is not None:
        return {"gcsUri": media.uri, "mimeType": media.mime_type}
    return {"bytesBase64Encoded": media.b64(), "mimeType": media.mime_type}


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _extra(request: Any) -> dict[str, Any]:
    return {k: v for k, v in request.extra_params.items() if k != "person_generation"}


def veo_body(
    request: Any, images: list[tuple[str, Media]], mode: Mode, provider_config: Mapping[str, Any]
) -> dict[str, Any]:
    """``:predictLongRunning``: ``{"instances": [...], "parameters": {...}}``."""
    instance: dict[str, Any] = {"prompt": request.prompt}
    references = []
    for role, media in images:
        if role == "first_frame":
            instance["image"] = _image(media)
        elif role == "last_frame":
            instance["lastFrame"] = _image(media)
        else:
            references.append(
                {"image": _image(media), "referenceType": "style" if role == "style" else "asset"}
            )
    if references:
        instance["referenceImages"] = references
    parameters: dict[str, Any] = {"sampleCount": 1}
    _set(parameters, "durationSeconds", request.duration_seconds)
    _set(parameters, "aspectRatio", request.aspect_ratio)
    _set(parameters, "resolution", request.resolution)
    _set(parameters, "negativePrompt", request.negative_prompt)
    _set(parameters, "personGeneration", request.extra_params.get("person_generation"))
    _set(parameters, "enhancePrompt", request.enhance_prompt)
    if mode == "vertex":
        _set(parameters, "seed", request.seed)
        _set(parameters, "generateAudio", request.generate_audio)
        _set(parameters, "storageUri", provider_config.get("output_gcs_uri"))
    parameters.update(_extra(request))
    return {"instances": [instance], "parameters": parameters}


def omni_body(
    model: GoogleModel, request: Any, images: list[tuple[str, Media]], provider_config: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST .../interactions``, in the background so it can be polled and cancelled."""
    roles = {role for role, _ in images}
    task = "reference_to_video" if "reference" in roles else "image_to_video" if roles else "text_to_video"
    content: Any = request.prompt
    if images:
        content = [{"type": "text", "text": request.prompt}]
        for _role, media in images:
            block: dict[str, Any] = {"type": "image", "mime_type": media.mime_type}
            if media.uri is not None:
                block["uri"] = media.uri
            else:
                block["data"] = media.b64()
            content.append(block)
    response_format: dict[str, Any] = {"type": "video"}
    _set(response_format, "aspect_ratio", request.aspect_ratio)
    if request.duration_seconds is not None:
        response_format["duration"] = f"{request.duration_seconds}s"
    _set(response_format, "resolution", request.resolution)
    if provider_config.get("output_gcs_uri"):
        response_format.update(delivery="uri", gcs_uri=provider_config["output_gcs_uri"])
    generation_config: dict[str, Any] = {"video_config": {"task": task}}
    _set(generation_config, "seed", request.seed)
    generation_config.update(_extra(request))
    return {
        "model": model.id,
        "input": content,
        "background": True,
        "generation_config": generation_config,
        "response_format": response_format,
    }


def imagen_body(request: Any, provider_config: Mapping[str, Any]) -> dict[str, Any]:
    """``:predict`` (``_GenerateImagesParameters_to_vertex``)."""
    parameters: dict[str, Any] = {"sampleCount": request.n, "includeRaiReason": True}
    _set(parameters, "aspectRatio", request.aspect_ratio)
    _set(parameters, "negativePrompt", request.negative_prompt)
    _set(parameters, "seed", request.seed)
    _set(parameters, "personGeneration", request.extra_params.get("person_generation"))
    _set(parameters, "sampleImageSize", request.size)
    _set(parameters, "storageUri", provider_config.get("output_gcs_uri"))
    parameters.update(_extra(request))
    return {"instances": [{"prompt": request.prompt}], "parameters": parameters}


def gemini_image_body(request: Any, images: list[tuple[str, Media]]) -> dict[str, Any]:
    """``:generateContent`` asking for an image (``responseModalities: ["IMAGE"]``)."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for _role, media in images:
        if media.uri is not None:
            parts.append({"fileData": {"fileUri": media.uri, "mimeType": media.mime_type}})
        else:
            parts.append({"inlineData": {"mimeType": media.mime_type, "data": media.b64()}})
    image_config: dict[str, Any] = {}
    _set(image_config, "aspectRatio", request.aspect_ratio)
    _set(image_config, "imageSize", request.size)
    generation_config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    if image_config:
        generation_config["imageConfig"] = image_config
    _set(generation_config, "seed", request.seed)
    generation_config.update(_extra(request))
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation_config}
