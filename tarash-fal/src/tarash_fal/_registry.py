"""The fal model registry: which fal fields each model family takes, and the payload builder.

A family is a model-id prefix matched on whole path segments (``"fal-ai/veo3.1"`` matches
``"fal-ai/veo3.1/fast"``, never ``"fal-ai/veo3.10"``; the longest matching prefix wins) with a
mapping ``{fal field: FieldMapper}``. Endpoints whose fields differ from their family's (Veo 3.1
first/last frame, Kling O3 image-to-video, Pixverse transition...) are families of their own, so
a longer prefix picks them.

Rules every built-in mapping follows:

* values are checked against the model's allowed values before anything is sent, and sent in the
  format fal's schema expects (``"8s"``, ``"5"`` or ``8``);
* each input image goes to exactly one fal field, chosen by its role: ``first_frame`` to the
  start-frame field, ``last_frame`` to the end-frame field, ``reference`` to the reference list
  where the model has one and otherwise to the start-frame field; a role the model has no field
  for is refused;
* :func:`build_payload` refuses a request field that decides what is generated (duration, aspect
  ratio, resolution, size, image count, input images, video, mask) when the resolved mapping has
  no mapper reading it, so it is never silently dropped. Tuning fields (seed, negative prompt,
  prompt enhancement, audio, quality, style) are sent where the model has a field for them;
* ``request.extra_params`` are merged last and override mapped fields: the escape hatch for any
  fal field Tarash does not model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.field_mappers import (
    FieldMapper,
    allowed_values_mapper,
    apply_field_mappers,
    duration_field_mapper,
    image_list_field_mapper,
    match_model_prefix,
    media_to_url,
    passthrough_field_mapper,
    single_image_field_mapper,
    video_url_field_mapper,
)
from tarash.tarash_gateway.plugin import Modality, ModelFamily
from tarash.tarash_gateway.utils import get_logger

__all__ = [
    "FAMILIES",
    "GENERIC_IMAGE_MAPPING",
    "GENERIC_VIDEO_MAPPING",
    "IMAGE_MAPPINGS",
    "VIDEO_MAPPINGS",
    "build_payload",
    "in_a_table",
    "resolve_prefix",
]

_log = get_logger("tarash.fal")

_ROLES = ("first_frame", "last_frame", "reference", "asset", "style")
_START = ("first_frame", "reference")

_DurationFormat = Literal["seconds_suffix", "string", "integer"]
_SizeMode = Literal["image_size", "aspect_ratio"]


# --------------------------------------------------------------------------------------------
# Mapper helpers
# --------------------------------------------------------------------------------------------


def _not_allowed(field: str, value: Any, allowed: Collection[Any]) -> ValidationError:
    return ValidationError(
        f"{field}={value!r} is not allowed; allowed values: {', '.join(map(str, allowed))}",
        field=field,
        value=value,
        allowed=tuple(allowed),
    )


@attrs.frozen
class _JointFieldMapper(FieldMapper):
    """A mapper whose converter also reads the request fields in ``also_reads``.

    :func:`build_payload` counts those fields as mapped, so it does not refuse them.
    """

    also_reads: tuple[str, ...] = ()


def _prompt_converter(_request: Any, value: Any) -> Any:
    return value or None


_PROMPT = FieldMapper("prompt", _prompt_converter)


def _prompt_or_multi_prompt(request: Any, value: Any) -> Any:
    if request.extra_params.get("multi_prompt") is None:
        return value or None
    if value:
        raise ValidationError(
            "prompt and extra_params['multi_prompt'] are mutually exclusive for this model; pass prompt=''",
            field="prompt",
            value=value,
        )
    return None


_PROMPT_OR_MULTI_PROMPT = FieldMapper("prompt", _prompt_or_multi_prompt)


def _knobs(**fields: str) -> dict[str, FieldMapper]:
    """``fal_field=request_field`` pairs sent as they are."""
    return {api: passthrough_field_mapper(source) for api, source in fields.items()}


def _check_roles(request: Any, accepted: tuple[str, ...]) -> None:
    for image in request.image_list:
        if image.type not in accepted:
            raise ValidationError(
                f"image_list: this model takes no image with role {image.type!r}; "
                f"accepted roles: {', '.join(accepted)}",
                field="image_list",
                value=image.type,
                allowed=accepted,
            )


def _frame_mapper(roles: tuple[str, ...], accepted: tuple[str, ...], required: bool) -> FieldMapper:
    single = single_image_field_mapper(roles)

    def convert(request: Any, value: Any) -> Any:
        _check_roles(request, accepted)
        url = single.converter(request, value)
        if url is None and required:
            raise ValidationError(
                f"image_list: this model needs an image with role {' or '.join(roles)}",
                field="image_list",
                value=[image.type for image in request.image_list],
                allowed=roles,
            )
        return url

    return FieldMapper("image_list", convert)


def _list_mapper(roles: tuple[str, ...], accepted: tuple[str, ...], required: bool) -> FieldMapper:
    listed = image_list_field_mapper(roles)

    def convert(request: Any, value: Any) -> Any:
        _check_roles(request, accepted)
        urls = listed.converter(request, value)
        if urls is None and required:
            raise ValidationError(
                f"image_list: this model needs at least one image with role {' or '.join(roles)}",
                field="image_list",
                value=[image.type for image in request.image_list],
                allowed=roles,
            )
        return urls

    return FieldMapper("image_list", convert)


@attrs.frozen(kw_only=True)
class _Inputs:
    """Which fal fields take a model's input media.

    Attributes:
        frames: fal field -> image roles; the field takes the one image with one of those roles.
        lists: fal field -> image roles; the field takes every image with one of those roles.
        required: fal fields (from ``frames``/``lists``, or ``video``) that must be filled.
        video: the fal field taking ``request.video``, if any.
    """

    frames: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    lists: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    required: tuple[str, ...] = ()
    video: str | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        """Every image role some field takes, in canonical order."""
        taken = {role for roles in (*self.frames.values(), *self.lists.values()) for role in roles}
        return tuple(role for role in _ROLES if role in taken)

    def mappers(self) -> dict[str, FieldMapper]:
        """The mappers for these inputs (each also refuses roles no field takes)."""
        accepted = self.roles
        mappers = {
            api: _frame_mapper(roles, accepted, api in self.required) for api, roles in self.frames.items()
        }
        mappers.update(
            {api: _list_mapper(roles, accepted, api in self.required) for api, roles in self.lists.items()}
        )
        if self.video is not None:
            mappers[self.video] = video_url_field_mapper(required=self.video in self.required)
        return mappers


def _duration_mapper(durations: tuple[int, ...], fmt: _DurationFormat) -> FieldMapper:
    if fmt == "seconds_suffix":
        return duration_field_mapper(durations, suffix="s")
    return duration_field_mapper(durations, as_string=fmt == "string")


_IMAGE_SIZE_PRESETS: Mapping[str, str] = {
    "1:1": "square_hd",
    "4:3": "landscape_4_3",
    "3:4": "portrait_4_3",
    "16:9": "landscape_16_9",
    "9:16": "portrait_16_9",
}
_PRESET_NAMES = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)
_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


def _size_value(size: str) -> Any:
    if size in _PRESET_NAMES:
        return size
    match = _SIZE.match(size)
    if match is None:
        raise _not_allowed("size", size, ("WIDTHxHEIGHT", *_PRESET_NAMES))
    return {"width": int(match[1]), "height": int(match[2])}


def _size_converter(_request: Any, value: Any) -> Any:
    return None if value is None else _size_value(value)


def _image_size_converter(request: Any, value: Any) -> Any:
    if value is not None:
        return _size_value(value)
    ratio = request.aspect_ratio
    if ratio is None:
        return None
    if ratio not in _IMAGE_SIZE_PRESETS:
        raise _not_allowed("aspect_ratio", ratio, tuple(_IMAGE_SIZE_PRESETS))
    return _IMAGE_SIZE_PRESETS[ratio]


_IMAGE_SIZE = _JointFieldMapper("size", _image_size_converter, also_reads=("aspect_ratio",))
_MASK_URL = FieldMapper("mask_image", lambda _r, value: None if value is None else media_to_url(value))


# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------


def _read_only(mapping: Mapping[str, FieldMapper]) -> Mapping[str, FieldMapper]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class _Family:
    """A registry entry: the record listed by ``tarash models`` and its read-only mapping."""

    record: ModelFamily
    mapping: Mapping[str, FieldMapper] = attrs.field(converter=_read_only)


def _video(
    prefix: str,
    name: str,
    description: str,
    *,
    inputs: _Inputs,
    durations: tuple[int, ...] = (),
    duration_format: _DurationFormat = "string",
    aspect_ratios: tuple[str, ...] = (),
    resolutions: tuple[str, ...] = (),
    resolution_transform: Callable[[Any], Any] = lambda value: value,
    prompt: FieldMapper | None = _PROMPT,
    fields: Mapping[str, FieldMapper] | None = None,
) -> _Family:
    mapping: dict[str, FieldMapper] = {} if prompt is None else {"prompt": prompt}
    allowed: dict[str, tuple[Any, ...]] = {}
    if durations:
        mapping["duration"] = _duration_mapper(durations, duration_format)
        allowed["duration_seconds"] = durations
    if aspect_ratios:
        mapping["aspect_ratio"] = allowed_values_mapper("aspect_ratio", aspect_ratios)
        allowed["aspect_ratio"] = aspect_ratios
    if resolutions:
        mapping["resolution"] = allowed_values_mapper(
            "resolution",
            resolutions,
            transform=resolution_transform,
        )
        allowed["resolution"] = resolutions
    mapping.update(inputs.mappers())
    if inputs.roles:
        allowed["image_list"] = inputs.roles
    mapping.update(fields or {})
    return _Family(
        ModelFamily(prefix=prefix, modality="video", name=name, allowed=allowed, description=description),
        mapping,
    )


def _image(
    prefix: str,
    name: str,
    description: str,
    *,
    inputs: _Inputs,
    size: _SizeMode = "image_size",
    aspect_ratios: tuple[str, ...] = (),
    num_images: bool = True,
    fields: Mapping[str, FieldMapper] | None = None,
) -> _Family:
    mapping: dict[str, FieldMapper] = {"prompt": _PROMPT}
    allowed: dict[str, tuple[Any, ...]] = {}
    if size == "image_size":
        mapping["image_size"] = _IMAGE_SIZE
        allowed["aspect_ratio"] = tuple(_IMAGE_SIZE_PRESETS)
    else:
        mapping["aspect_ratio"] = allowed_values_mapper("aspect_ratio", aspect_ratios)
        allowed["aspect_ratio"] = aspect_ratios
    if num_images:
        mapping["num_images"] = passthrough_field_mapper("n")
    else:
        allowed["n"] = (1,)
    mapping.update(inputs.mappers())
    if inputs.roles:
        allowed["image_list"] = inputs.roles
    mapping.update(fields or {})
    return _Family(
        ModelFamily(prefix=prefix, modality="image", name=name, allowed=allowed, description=description),
        mapping,
    )


def _seconds(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


_VEO_DURATIONS = (4, 6, 8)
_KLING_ASPECTS = ("16:9", "9:16", "1:1")
_PIXVERSE_ASPECTS = ("16:9", "4:3", "1:1", "3:4", "9:16")
_PIXVERSE_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
_WAN22_RESOLUTIONS = ("480p", "580p", "720p")
_SEEDANCE_ASPECTS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "auto")
_FLUX_ULTRA_ASPECTS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
_IDEOGRAM_V2_ASPECTS = (
    "10:16",
    "16:10",
    "9:16",
    "16:9",
    "4:3",
    "3:4",
    "1:1",
    "1:3",
    "3:1",
    "3:2",
    "2:3",
)

_VEO_KNOBS = _knobs(generate_audio="generate_audio", negative_prompt="negative_prompt", seed="seed")
_KLING_START = _Inputs(frames={"start_image_url": _START, "end_image_url": ("last_frame",)})
_KLING_OMNI = _Inputs(
    frames={"start_image_url": ("first_frame",), "end_image_url": ("last_frame",)},
    lists={"image_urls": ("reference",)},
    video="video_url",
)
_KLING_O3_I2V = _Inputs(frames={"image_url": _START, "end_image_url": ("last_frame",)})
_KLING_MOTION = _Inputs(frames={"image_url": _START}, video="video_url", required=("image_url", "video_url"))
_WAN_KNOBS = _knobs(negative_prompt="negative_prompt", seed="seed", enable_prompt_expansion="enhance_prompt")
_PIXVERSE_KNOBS = _knobs(negative_prompt="negative_prompt", seed="seed")
_PIXVERSE_V55_KNOBS = {**_PIXVERSE_KNOBS, **_knobs(generate_audio_switch="generate_audio")}
_PIXVERSE_TRANSITION = _Inputs(
    frames={"first_image_url": ("first_frame",), "end_image_url": ("last_frame",)},
    required=("first_image_url",),
)


def _veo31(prefix: str, name: str) -> list[_Family]:
    """Veo 3.1 text/image-to-video at ``prefix`` plus its first/last-frame and extend endpoints."""
    return [
        _video(
            prefix,
            name,
            "Google Veo 3.1 text-to-video and image-to-video, with audio.",
            inputs=_Inputs(frames={"image_url": _START}),
            durations=_VEO_DURATIONS,
            duration_format="seconds_suffix",
            aspect_ratios=("auto", "16:9", "9:16"),
            resolutions=("720p", "1080p", "4k"),
            fields=_VEO_KNOBS,
        ),
        _video(
            f"{prefix}/first-last-frame-to-video",
            f"{name} first/last frame",
            "Veo 3.1 video between a first and a last frame.",
            inputs=_Inputs(
                frames={"first_frame_url": ("first_frame",), "last_frame_url": ("last_frame",)},
                required=("first_frame_url", "last_frame_url"),
            ),
            durations=_VEO_DURATIONS,
            duration_format="seconds_suffix",
            aspect_ratios=("auto", "16:9", "9:16"),
            resolutions=("720p", "1080p", "4k"),
            fields=_VEO_KNOBS,
        ),
        _video(
            f"{prefix}/extend-video",
            f"{name} extend",
            "Veo 3.1 continuation of a Veo-made video (7 s at 720p).",
            inputs=_Inputs(video="video_url", required=("video_url",)),
            durations=(7,),
            duration_format="seconds_suffix",
            aspect_ratios=("auto", "16:9", "9:16"),
            resolutions=("720p",),
            fields=_VEO_KNOBS,
        ),
    ]


_VIDEO_FAMILIES: list[_Family] = [
    *_veo31("fal-ai/veo3.1", "Veo 3.1"),
    *_veo31("fal-ai/veo3.1/fast", "Veo 3.1 Fast"),
    _video(
        "fal-ai/veo3.1/reference-to-video",
        "Veo 3.1 reference-to-video",
        "Veo 3.1 video keeping the subjects of reference images.",
        inputs=_Inputs(lists={"image_urls": ("reference",)}, required=("image_urls",)),
        durations=(8,),
        duration_format="seconds_suffix",
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4k"),
        fields=_knobs(generate_audio="generate_audio"),
    ),
    _video(
        "fal-ai/veo3",
        "Veo 3",
        "Google Veo 3 (and Veo 3 Fast) text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=_VEO_DURATIONS,
        duration_format="seconds_suffix",
        aspect_ratios=("auto", "16:9", "9:16", "1:1"),
        resolutions=("720p", "1080p"),
        fields=_VEO_KNOBS,
    ),
    _video(
        "fal-ai/kling-video/v2.6",
        "Kling 2.6",
        "Kling 2.6 text-to-video and image-to-video (start and end frame), with audio.",
        inputs=_KLING_START,
        durations=(5, 10),
        aspect_ratios=_KLING_ASPECTS,
        fields=_knobs(generate_audio="generate_audio", negative_prompt="negative_prompt"),
    ),
    *(
        _video(
            f"fal-ai/kling-video/v2.6/{tier}/motion-control",
            f"Kling 2.6 motion control ({tier})",
            "Kling 2.6: the motion of a reference video applied to a character image.",
            inputs=_KLING_MOTION,
        )
        for tier in ("standard", "pro")
    ),
    _video(
        "fal-ai/kling-video/o1",
        "Kling O1",
        "Kling O1 image/reference-to-video and video editing.",
        inputs=_KLING_OMNI,
        durations=_seconds(3, 10),
        aspect_ratios=_KLING_ASPECTS,
    ),
    _video(
        "fal-ai/kling-video/o3",
        "Kling O3",
        "Kling O3 text/reference-to-video and video editing, with audio and multi-shot prompts.",
        inputs=_KLING_OMNI,
        durations=_seconds(3, 15),
        aspect_ratios=_KLING_ASPECTS,
        prompt=_PROMPT_OR_MULTI_PROMPT,
        fields=_knobs(generate_audio="generate_audio"),
    ),
    *(
        _video(
            f"fal-ai/kling-video/o3/{tier}/image-to-video",
            f"Kling O3 image-to-video ({tier})",
            "Kling O3 video from a start frame and an optional end frame.",
            inputs=_KLING_O3_I2V,
            durations=_seconds(3, 15),
            prompt=_PROMPT_OR_MULTI_PROMPT,
            fields=_knobs(generate_audio="generate_audio"),
        )
        for tier in ("standard", "pro")
    ),
    _video(
        "fal-ai/kling-video/v3",
        "Kling 3.0",
        "Kling 3.0 text-to-video and image-to-video, with audio and multi-shot prompts.",
        inputs=_KLING_START,
        durations=_seconds(3, 15),
        aspect_ratios=_KLING_ASPECTS,
        prompt=_PROMPT_OR_MULTI_PROMPT,
        fields=_knobs(generate_audio="generate_audio", negative_prompt="negative_prompt"),
    ),
    _video(
        "fal-ai/minimax",
        "MiniMax Hailuo",
        "MiniMax Hailuo (02, 2.3, video-01) text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START, "end_image_url": ("last_frame",)}),
        durations=(6, 10),
        resolutions=("512p", "768p", "1080p"),
        resolution_transform=str.upper,
        fields=_knobs(prompt_optimizer="enhance_prompt"),
    ),
    _video(
        "fal-ai/sora-2",
        "Sora 2",
        "OpenAI Sora 2 (and Sora 2 Pro) text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=(4, 8, 12, 16, 20),
        duration_format="integer",
        aspect_ratios=("auto", "16:9", "9:16"),
        resolutions=("720p", "1080p"),
    ),
    _video(
        "fal-ai/sora-2/video-to-video/remix",
        "Sora 2 remix",
        "Sora 2 remix of an earlier Sora video (pass its id as extra_params['video_id']).",
        inputs=_Inputs(),
    ),
    _video(
        "fal-ai/wan-25-preview",
        "Wan 2.5",
        "Wan 2.5 text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=(5, 10),
        aspect_ratios=("16:9", "9:16", "1:1"),
        resolutions=("480p", "720p", "1080p"),
        fields=_WAN_KNOBS,
    ),
    _video(
        "wan/v2.6",
        "Wan 2.6",
        "Wan 2.6 multi-shot text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=(5, 10, 15),
        aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4"),
        resolutions=("720p", "1080p"),
        fields=_WAN_KNOBS,
    ),
    _video(
        "fal-ai/wan/v2.2-a14b",
        "Wan 2.2 A14B",
        "Wan 2.2 A14B text/image/video-to-video; length is set with extra_params num_frames.",
        inputs=_Inputs(frames={"image_url": _START, "end_image_url": ("last_frame",)}, video="video_url"),
        aspect_ratios=("auto", "16:9", "9:16", "1:1"),
        resolutions=_WAN22_RESOLUTIONS,
        fields=_WAN_KNOBS,
    ),
    _video(
        "fal-ai/wan/v2.2-14b/animate",
        "Wan 2.2 Animate",
        "Wan 2.2 Animate (move, replace): a character image driven by a video.",
        inputs=_Inputs(frames={"image_url": _START}, video="video_url", required=("image_url", "video_url")),
        resolutions=_WAN22_RESOLUTIONS,
        prompt=None,
        fields=_knobs(seed="seed"),
    ),
    _video(
        "fal-ai/bytedance/seedance",
        "Seedance",
        "ByteDance Seedance 1.x text-to-video, image-to-video and reference-to-video.",
        inputs=_Inputs(
            frames={"image_url": ("first_frame",), "end_image_url": ("last_frame",)},
            lists={"reference_image_urls": ("reference",)},
        ),
        durations=_seconds(2, 12),
        aspect_ratios=_SEEDANCE_ASPECTS,
        resolutions=("480p", "720p", "1080p"),
        fields=_knobs(seed="seed", generate_audio="generate_audio"),
    ),
    _video(
        "fal-ai/pixverse/v5",
        "Pixverse 5",
        "Pixverse 5 text-to-video and image-to-video.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=(5, 8, 10),
        aspect_ratios=_PIXVERSE_ASPECTS,
        resolutions=_PIXVERSE_RESOLUTIONS,
        fields=_PIXVERSE_KNOBS,
    ),
    _video(
        "fal-ai/pixverse/v5/transition",
        "Pixverse 5 transition",
        "Pixverse 5 transition from a first frame to an optional last frame.",
        inputs=_PIXVERSE_TRANSITION,
        durations=(5, 8, 10),
        aspect_ratios=_PIXVERSE_ASPECTS,
        resolutions=_PIXVERSE_RESOLUTIONS,
        fields=_PIXVERSE_KNOBS,
    ),
    _video(
        "fal-ai/pixverse/v5.5",
        "Pixverse 5.5",
        "Pixverse 5.5 text-to-video and image-to-video, with audio.",
        inputs=_Inputs(frames={"image_url": _START}),
        durations=(5, 8, 10),
        aspect_ratios=_PIXVERSE_ASPECTS,
        resolutions=_PIXVERSE_RESOLUTIONS,
        fields=_PIXVERSE_V55_KNOBS,
    ),
    _video(
        "fal-ai/pixverse/v5.5/transition",
        "Pixverse 5.5 transition",
        "Pixverse 5.5 transition from a first frame to an optional last frame, with audio.",
        inputs=_PIXVERSE_TRANSITION,
        durations=(5, 8, 10),
        aspect_ratios=_PIXVERSE_ASPECTS,
        resolutions=_PIXVERSE_RESOLUTIONS,
        fields=_PIXVERSE_V55_KNOBS,
    ),
    _video(
        "fal-ai/pixverse/swap",
        "Pixverse swap",
        "Pixverse swap of a person, object or background in a video with an image.",
        inputs=_Inputs(frames={"image_url": _START}, video="video_url", required=("image_url", "video_url")),
        resolutions=("360p", "540p", "720p"),
        prompt=None,
        fields=_knobs(seed="seed"),
    ),
]

_FLUX_FIELDS = _knobs(seed="seed")
_FLUX_IMAGE = _Inputs(frames={"image_url": ("reference",)})
_FLUX2_IMAGES = _Inputs(lists={"image_urls": ("reference",)})

_IMAGE_FAMILIES: list[_Family] = [
    _image(
        "fal-ai/flux",
        "FLUX.1",
        "FLUX.1 [dev]/[schnell] text-to-image and image-to-image.",
        inputs=_FLUX_IMAGE,
        fields=_FLUX_FIELDS,
    ),
    _image(
        "fal-ai/flux-lora",
        "FLUX.1 LoRA",
        "FLUX.1 [dev] with LoRA weights (extra_params['loras']).",
        inputs=_FLUX_IMAGE,
        fields=_FLUX_FIELDS,
    ),
    _image(
        "fal-ai/flux-pro",
        "FLUX.1 Pro",
        "FLUX.1 [pro] and FLUX 1.1 [pro], including fill with a mask.",
        inputs=_FLUX_IMAGE,
        fields={**_FLUX_FIELDS, "mask_url": _MASK_URL},
    ),
    _image(
        "fal-ai/flux-pro/v1.1-ultra",
        "FLUX 1.1 Pro Ultra",
        "FLUX 1.1 [pro] ultra, sized by aspect ratio.",
        inputs=_FLUX_IMAGE,
        size="aspect_ratio",
        aspect_ratios=_FLUX_ULTRA_ASPECTS,
        fields=_FLUX_FIELDS,
    ),
    _image(
        "fal-ai/flux-pro/kontext",
        "FLUX.1 Kontext Pro",
        "FLUX.1 Kontext [pro] image editing and generation.",
        inputs=_FLUX_IMAGE,
        size="aspect_ratio",
        aspect_ratios=_FLUX_ULTRA_ASPECTS,
        fields=_FLUX_FIELDS,
    ),
    _image(
        "fal-ai/flux-2",
        "FLUX.2",
        "FLUX.2 [dev] text-to-image and multi-reference editing.",
        inputs=_FLUX2_IMAGES,
        fields=_FLUX_FIELDS,
    ),
    *(
        _image(
            f"fal-ai/flux-2-{tier}",
            f"FLUX.2 {tier.capitalize()}",
            f"FLUX.2 [{tier}] text-to-image and multi-reference editing (one image per call).",
            inputs=_FLUX2_IMAGES,
            num_images=False,
            fields=_FLUX_FIELDS,
        )
        for tier in ("pro", "flex", "max")
    ),
    *(
        _image(
            prefix,
            "Z-Image Turbo",
            "Tongyi Z-Image Turbo fast text-to-image.",
            inputs=_Inputs(),
            fields=_knobs(seed="seed"),
        )
        for prefix in ("fal-ai/z-image/turbo", "fal-ai/z-image-turbo")
    ),
    *(
        _image(
            prefix,
            "Recraft",
            "Recraft text-to-image (style presets, vector art) and image-to-image.",
            inputs=_Inputs(frames={"image_url": ("reference",)}),
            num_images=False,
            fields=_knobs(style="style"),
        )
        for prefix in ("fal-ai/recraft", "fal-ai/recraft-v3")
    ),
    _image(
        "fal-ai/ideogram/v3",
        "Ideogram 3",
        "Ideogram 3 text-to-image with style reference images.",
        inputs=_Inputs(lists={"image_urls": ("style",)}),
        fields=_knobs(style="style", negative_prompt="negative_prompt", seed="seed"),
    ),
    _image(
        "fal-ai/ideogram",
        "Ideogram 2",
        "Ideogram 2 text-to-image, sized by aspect ratio.",
        inputs=_Inputs(),
        size="aspect_ratio",
        aspect_ratios=_IDEOGRAM_V2_ASPECTS,
        num_images=False,
        fields=_knobs(style="style", negative_prompt="negative_prompt", seed="seed"),
    ),
]

#: model prefix -> {fal field: FieldMapper} for video models.
VIDEO_MAPPINGS: dict[str, Mapping[str, FieldMapper]] = {f.record.prefix: f.mapping for f in _VIDEO_FAMILIES}
#: model prefix -> {fal field: FieldMapper} for image models.
IMAGE_MAPPINGS: dict[str, Mapping[str, FieldMapper]] = {f.record.prefix: f.mapping for f in _IMAGE_FAMILIES}
#: One record per registered prefix, for ``tarash models`` and the docs.
FAMILIES: tuple[ModelFamily, ...] = tuple(f.record for f in (*_VIDEO_FAMILIES, *_IMAGE_FAMILIES))

#: Used for a video model id no registered prefix matches.
GENERIC_VIDEO_MAPPING: Mapping[str, FieldMapper] = {
    "prompt": _PROMPT,
    "duration": duration_field_mapper(as_string=False),
    **_knobs(aspect_ratio="aspect_ratio", resolution="resolution"),
    **_Inputs(
        frames={"image_url": ("first_frame",), "end_image_url": ("last_frame",)},
        lists={"image_urls": ("reference",)},
        video="video_url",
    ).mappers(),
    **_knobs(seed="seed", negative_prompt="negative_prompt", generate_audio="generate_audio"),
}
#: Used for an image model id no registered prefix matches.
GENERIC_IMAGE_MAPPING: Mapping[str, FieldMapper] = {
    "prompt": _PROMPT,
    "image_size": FieldMapper("size", _size_converter),
    **_knobs(aspect_ratio="aspect_ratio", num_images="n"),
    **_Inputs(lists={"image_urls": ("reference",)}).mappers(),
    "mask_url": _MASK_URL,
    **_knobs(seed="seed", negative_prompt="negative_prompt"),
}

_GENERIC: Mapping[str, Mapping[str, FieldMapper]] = {
    "video": GENERIC_VIDEO_MAPPING,
    "image": GENERIC_IMAGE_MAPPING,
}
_OTHER_MODALITY: Mapping[str, Mapping[str, Mapping[str, FieldMapper]]] = {
    "video": IMAGE_MAPPINGS,
    "image": VIDEO_MAPPINGS,
}
#: Request fields that decide what is generated: refused when the mapping has no mapper for them.
_DECISIVE: Mapping[str, tuple[str, ...]] = {
    "video": ("duration_seconds", "aspect_ratio", "resolution", "image_list", "video"),
    "image": ("size", "aspect_ratio", "n", "image_list", "mask_image"),
}


# --------------------------------------------------------------------------------------------
# Payload
# --------------------------------------------------------------------------------------------


def _reads(mappers: Mapping[str, FieldMapper]) -> set[str]:
    reads = {mapper.source_field for mapper in mappers.values()}
    for mapper in mappers.values():
        if isinstance(mapper, _JointFieldMapper):
            reads.update(mapper.also_reads)
    return reads


def _refuse_unmapped(
    model: str, request: Any, modality: Modality, mappers: Mapping[str, FieldMapper]
) -> None:
    reads = _reads(mappers)
    for field in _DECISIVE[modality]:
        value: Any = getattr(request, field, None)
        given = value != 1 if field == "n" else value not in (None, [])
        if given and field not in reads:
            shown = [image.type for image in value] if field == "image_list" else value
            raise ValidationError(
                f"{field} is not supported by {model}: its fal mapping has no field for it "
                "(send the model's own field through extra_params instead)",
                field=field,
                value=shown,
                allowed=(1,) if field == "n" else (),
                model=model,
            )


def resolve_prefix(
    model: str,
    modality: Modality,
    mappings: Mapping[str, Mapping[str, FieldMapper]],
) -> str | None:
    """The mapping prefix for ``model``: the longest, on path segments, valid for ``modality``.

    A prefix of the built-in video registry is video-only and one of the image registry
    image-only; any other (user-registered) prefix serves both.
    """
    other = _OTHER_MODALITY[modality]
    return match_model_prefix(model, [prefix for prefix in mappings if prefix not in other])


def in_a_table(model: str, modality: Modality, mappings: Mapping[str, Mapping[str, FieldMapper]]) -> bool:
    """Whether a table maps ``model`` (for ``modality``, or the built-in table of the other one)."""
    other = match_model_prefix(model, list(_OTHER_MODALITY[modality]))
    return other is not None or resolve_prefix(model, modality, mappings) is not None


def build_payload(
    model: str,
    request: Any,
    modality: Modality,
    mappings: Mapping[str, Mapping[str, FieldMapper]],
) -> dict[str, Any]:
    """The exact JSON body fal receives for ``request`` on ``model``.

    Args:
        model: the fal model id, e.g. ``"fal-ai/veo3.1/fast/image-to-video"``.
        request: a ``VideoGenerationRequest`` or ``ImageGenerationRequest``.
        modality: ``"video"`` or ``"image"``.
        mappings: prefix -> {fal field: FieldMapper}, as returned by
            ``get_provider_field_mapping("fal")`` (the built-ins plus user registrations).

    Raises:
        ValidationError: a value the model does not accept, an image role it has no field for,
            or a decisive field its mapping does not read; names the field, value and allowed.
    """
    prefix = resolve_prefix(model, modality, mappings)
    other = match_model_prefix(model, list(_OTHER_MODALITY[modality]))
    if other is not None and (prefix is None or len(other) > len(prefix)):
        kind = "image" if modality == "video" else "video"
        raise ValidationError(
            f"{model!r} is a fal {kind} model ({other}); it cannot generate {modality}: "
            f"use generate_{kind}, or a {modality} model",
            field="model",
            value=model,
        )
    if prefix is None:
        _log.debug("No fal field mapping matches %s; using the generic %s mapping", model, modality)
        mappers = _GENERIC[modality]
    else:
        mappers = mappings[prefix]
    _refuse_unmapped(model, request, modality, mappers)
    payload = apply_field_mappers(mappers, request, model=model)
    payload.update(request.extra_params)
    return payload
