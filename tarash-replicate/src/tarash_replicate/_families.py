"""The Replicate model table: which input each unified request field goes to, and its allowed values.

One :class:`Family` per official model (``owner/name``). Rules every family follows:

* values are checked against the model's allowed values before anything is sent;
* each input image goes to the one input its role names (``first_frame``, ``last_frame``,
  ``reference``); a role the model has no input for is refused;
* a request field the model has no input for is refused rather than dropped (see
  :func:`tarash_replicate._payload.build_input`);
* ``request.extra_params`` are merged last and override mapped inputs: the escape hatch for any
  input Tarash does not model.

Input names and values were taken from each model's page on replicate.com (API tab); the docs page
lists the ones to re-check against ``GET /v1/models/{owner}/{name}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.field_mappers import (
    FieldMapper,
    allowed_values_mapper,
    duration_field_mapper,
    passthrough_field_mapper,
)
from tarash.tarash_gateway.plugin import Modality, ModelFamily

__all__ = ["FAMILIES", "Family", "family_for"]

Choice = tuple[str, tuple[Any, ...]]


def _media_value(value: Any) -> Any:
    """Media as sent: a URL string as is (local media was turned into one by ``_inputs``)."""
    if not isinstance(value, str):
        raise TypeError(f"media must be resolved to a URL before the input is built, got {type(value)}")
    return value


def _frame(roles: tuple[str, ...], accepted: tuple[str, ...]) -> FieldMapper:
    def convert(request: Any, _value: Any) -> Any:
        for image in request.image_list:
            if image.type not in accepted:
                raise ValidationError(
                    f"image_list: this model takes no image with role {image.type!r}; "
                    f"accepted roles: {', '.join(accepted)}",
                    field="image_list",
                    value=image.type,
                    allowed=accepted,
                )
        found = [image for image in request.image_list if image.type in roles]
        if len(found) > 1:
            raise ValidationError(
                f"image_list: at most one image with role {' or '.join(roles)}, got {len(found)}",
                field="image_list",
                value=[image.type for image in found],
                allowed=roles,
            )
        return _media_value(found[0].image) if found else None

    return FieldMapper("image_list", convert)


def _image_list(roles: tuple[str, ...], limit: int) -> FieldMapper:
    def convert(request: Any, _value: Any) -> Any:
        found = [_media_value(image.image) for image in request.image_list if image.type in roles]
        if len(found) > limit:
            raise ValidationError(
                f"image_list: at most {limit} images with role {' or '.join(roles)}, got {len(found)}",
                field="image_list",
                value=len(found),
            )
        return found or None

    return FieldMapper("image_list", convert)


def _count(source: str, maximum: int) -> FieldMapper:
    allowed = tuple(range(1, maximum + 1))

    def convert(_request: Any, value: Any) -> Any:
        if value not in allowed:
            raise ValidationError(
                f"{source}={value!r} is not allowed; allowed values: {', '.join(map(str, allowed))}",
                field=source,
                value=value,
                allowed=allowed,
            )
        return value

    return FieldMapper(source, convert)


def _width_height(sizes: tuple[str, ...], axis: int) -> FieldMapper:
    def convert(_request: Any, value: Any) -> Any:
        if value is None:
            return None
        if value not in sizes:
            raise ValidationError(
                f"size={value!r} is not allowed; allowed values: {', '.join(sizes)}",
                field="size",
                value=value,
                allowed=sizes,
            )
        return int(value.split("x")[axis])

    return FieldMapper("size", convert)


def _mask() -> FieldMapper:
    return FieldMapper("mask_image", lambda _r, value: None if value is None else _media_value(value))


@attrs.frozen(kw_only=True)
class Family:
    """One Replicate model and how unified request fields become its inputs.

    Attributes:
        model: ``owner/name``.
        modality: ``"video"`` or ``"image"``.
        name: display name.
        duration: (input, allowed seconds), sent as an integer.
        aspect_ratio, resolution: (input, allowed values), sent as given.
        size: allowed ``WxH`` values of ``request.size``, sent as ``width``/``height``.
        frames: input -> image roles; the input takes the one image with one of those roles.
        references: (input, most images) taking every ``reference`` image as a list.
        mask: input taking ``request.mask_image``.
        count: (input, most) taking ``request.n`` (images).
        inputs: request field -> input, sent as given (seed, negative_prompt...).
        choices: request field -> (input, allowed values) for other enumerated fields.
        required_roles: image roles the model cannot run without.
        wait: a fast model: submit with ``Prefer: wait`` so the answer may already hold the output.
    """

    model: str
    modality: Modality
    name: str
    duration: tuple[str, tuple[int, ...]] | None = None
    aspect_ratio: Choice | None = None
    resolution: Choice | None = None
    size: tuple[str, ...] = ()
    frames: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    references: tuple[str, int] | None = None
    mask: str | None = None
    count: tuple[str, int] | None = None
    inputs: Mapping[str, str] = attrs.field(factory=dict)
    choices: Mapping[str, Choice] = attrs.field(factory=dict)
    required_roles: tuple[str, ...] = ()
    wait: bool = False

    @property
    def roles(self) -> tuple[str, ...]:
        taken = {role for roles in self.frames.values() for role in roles}
        if self.references is not None:
            taken.add("reference")
        return tuple(
            role for role in ("first_frame", "last_frame", "reference", "asset", "style") if role in taken
        )

    def mapping(self) -> dict[str, FieldMapper]:
        """``{input: FieldMapper}`` for this model (``prompt`` first)."""
        mappers: dict[str, FieldMapper] = {"prompt": passthrough_field_mapper("prompt")}
        if self.duration is not None:
            api, seconds = self.duration
            mappers[api] = duration_field_mapper(seconds, as_string=False)
        for source, choice in (("aspect_ratio", self.aspect_ratio), ("resolution", self.resolution)):
            if choice is not None:
                mappers[choice[0]] = allowed_values_mapper(source, choice[1])
        if self.size:
            mappers["width"] = _width_height(self.size, 0)
            mappers["height"] = _width_height(self.size, 1)
        accepted = self.roles
        for api, roles in self.frames.items():
            mappers[api] = _frame(roles, accepted)
        if self.references is not None:
            mappers[self.references[0]] = _image_list(("reference",), self.references[1])
        if self.mask is not None:
            mappers[self.mask] = _mask()
        if self.count is not None:
            mappers[self.count[0]] = _count("n", self.count[1])
        for source, api in self.inputs.items():
            mappers[api] = passthrough_field_mapper(source)
        for source, (api, allowed) in self.choices.items():
            mappers[api] = allowed_values_mapper(source, allowed)
        return mappers

    def allowed(self) -> dict[str, tuple[Any, ...]]:
        """Unified field -> allowed values, for ``tarash models``."""
        allowed: dict[str, tuple[Any, ...]] = {}
        if self.duration is not None:
            allowed["duration_seconds"] = self.duration[1]
        if self.aspect_ratio is not None:
            allowed["aspect_ratio"] = self.aspect_ratio[1]
        if self.resolution is not None:
            allowed["resolution"] = self.resolution[1]
        if self.size:
            allowed["size"] = self.size
        if self.count is not None:
            allowed["n"] = tuple(range(1, self.count[1] + 1))
        if self.roles:
            allowed["image_list.type"] = self.roles
        for source, (_api, values) in self.choices.items():
            allowed[source] = values
        return allowed

    def model_family(self) -> ModelFamily:
        return ModelFamily(prefix=self.model, modality=self.modality, name=self.name, allowed=self.allowed())


_VEO_ASPECT = ("aspect_ratio", ("16:9", "9:16"))
_KLING_ASPECT = ("aspect_ratio", ("16:9", "9:16", "1:1"))
_SEEDANCE_ASPECT = ("aspect_ratio", ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "9:21"))
_LUMA_ASPECT = ("aspect_ratio", ("1:1", "3:4", "4:3", "9:16", "16:9", "9:21", "21:9"))
_FLUX_ASPECT = (
    "aspect_ratio",
    ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"),
)
_IDEOGRAM_ASPECT = (
    "aspect_ratio",
    ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "16:10", "10:16", "3:1", "1:3"),
)
_IMAGEN_ASPECT = ("aspect_ratio", ("1:1", "9:16", "16:9", "3:4", "4:3"))
_TUNING = {"seed": "seed", "negative_prompt": "negative_prompt"}


def _veo(model: str, name: str, *, last_frame: bool) -> Family:
    frames: dict[str, tuple[str, ...]] = {"image": ("first_frame",)}
    if last_frame:
        frames["last_frame"] = ("last_frame",)
    return Family(
        model=model,
        modality="video",
        name=name,
        duration=("duration", (4, 6, 8)),
        aspect_ratio=_VEO_ASPECT,
        resolution=("resolution", ("720p", "1080p")),
        frames=frames,
        references=("reference_images", 3) if last_frame else None,
        inputs={**_TUNING, "generate_audio": "generate_audio"},
    )


def _kling(model: str, name: str, *, needs_image: bool) -> Family:
    return Family(
        model=model,
        modality="video",
        name=name,
        duration=("duration", (5, 10)),
        aspect_ratio=None if needs_image else _KLING_ASPECT,
        frames={"start_image": ("first_frame", "reference"), "end_image": ("last_frame",)},
        inputs={"negative_prompt": "negative_prompt"},
        required_roles=("first_frame",) if needs_image else (),
    )


def _seedance(model: str, name: str) -> Family:
    return Family(
        model=model,
        modality="video",
        name=name,
        duration=("duration", tuple(range(2, 13))),
        aspect_ratio=_SEEDANCE_ASPECT,
        resolution=("resolution", ("480p", "720p", "1080p")),
        frames={"image": ("first_frame", "reference"), "last_frame_image": ("last_frame",)},
        inputs={"seed": "seed"},
    )


def _flux(model: str, name: str, *, outputs: int, fast: bool) -> Family:
    return Family(
        model=model,
        modality="image",
        name=name,
        aspect_ratio=_FLUX_ASPECT,
        count=("num_outputs", outputs),
        inputs={"seed": "seed"},
        wait=fast,
    )


def _ideogram(model: str, name: str) -> Family:
    return Family(
        model=model,
        modality="image",
        name=name,
        aspect_ratio=_IDEOGRAM_ASPECT,
        frames={"image": ("reference",)},
        mask="mask",
        choices={"style": ("style_type", ("None", "Auto", "General", "Realistic", "Design"))},
        inputs={"seed": "seed"},
    )


def _imagen(model: str, name: str, *, fast: bool) -> Family:
    return Family(model=model, modality="image", name=name, aspect_ratio=_IMAGEN_ASPECT, wait=fast)


FAMILIES: tuple[Family, ...] = (
    # -- video ---------------------------------------------------------------------------------
    _veo("google/veo-3", "Veo 3", last_frame=False),
    _veo("google/veo-3-fast", "Veo 3 Fast", last_frame=False),
    _veo("google/veo-3.1", "Veo 3.1", last_frame=True),
    _veo("google/veo-3.1-fast", "Veo 3.1 Fast", last_frame=True),
    _kling("kwaivgi/kling-v2.1", "Kling 2.1 (image to video)", needs_image=True),
    _kling("kwaivgi/kling-v2.5-turbo-pro", "Kling 2.5 Turbo Pro", needs_image=False),
    Family(
        model="minimax/hailuo-02",
        modality="video",
        name="MiniMax Hailuo 02",
        duration=("duration", (6, 10)),
        resolution=("resolution", ("512p", "768p", "1080p")),
        frames={"first_frame_image": ("first_frame",), "last_frame_image": ("last_frame",)},
        inputs={"enhance_prompt": "prompt_optimizer"},
    ),
    Family(
        model="minimax/video-01",
        modality="video",
        name="MiniMax Video-01",
        frames={"first_frame_image": ("first_frame",), "subject_reference": ("reference",)},
        inputs={"enhance_prompt": "prompt_optimizer"},
    ),
    Family(
        model="wan-video/wan-2.5-t2v",
        modality="video",
        name="Wan 2.5 (text to video)",
        duration=("duration", (5, 10)),
        resolution=("resolution", ("480p", "720p", "1080p")),
        inputs={**_TUNING, "enhance_prompt": "enable_prompt_expansion"},
    ),
    Family(
        model="wan-video/wan-2.5-i2v",
        modality="video",
        name="Wan 2.5 (image to video)",
        duration=("duration", (5, 10)),
        resolution=("resolution", ("480p", "720p", "1080p")),
        frames={"image": ("first_frame",)},
        inputs={**_TUNING, "enhance_prompt": "enable_prompt_expansion"},
        required_roles=("first_frame",),
    ),
    _seedance("bytedance/seedance-1-pro", "Seedance 1 Pro"),
    _seedance("bytedance/seedance-1-lite", "Seedance 1 Lite"),
    Family(
        model="luma/ray-2-720p",
        modality="video",
        name="Luma Ray 2 (720p)",
        duration=("duration", (5, 9)),
        aspect_ratio=_LUMA_ASPECT,
        frames={"start_image": ("first_frame",), "end_image": ("last_frame",)},
    ),
    Family(
        model="luma/ray-flash-2-540p",
        modality="video",
        name="Luma Ray Flash 2 (540p)",
        duration=("duration", (5, 9)),
        aspect_ratio=_LUMA_ASPECT,
        frames={"start_image": ("first_frame",), "end_image": ("last_frame",)},
    ),
    # -- image ---------------------------------------------------------------------------------
    _flux("black-forest-labs/flux-schnell", "FLUX.1 [schnell]", outputs=4, fast=True),
    _flux("black-forest-labs/flux-dev", "FLUX.1 [dev]", outputs=4, fast=True),
    Family(
        model="black-forest-labs/flux-1.1-pro",
        modality="image",
        name="FLUX1.1 [pro]",
        aspect_ratio=_FLUX_ASPECT,
        frames={"image_prompt": ("reference",)},
        inputs={"seed": "seed"},
        wait=True,
    ),
    _ideogram("ideogram-ai/ideogram-v3-turbo", "Ideogram 3.0 Turbo"),
    _ideogram("ideogram-ai/ideogram-v3-quality", "Ideogram 3.0 Quality"),
    Family(
        model="recraft-ai/recraft-v3",
        modality="image",
        name="Recraft V3",
        choices={
            "size": (
                "size",
                (
                    "1024x1024",
                    "1365x1024",
                    "1024x1365",
                    "1536x1024",
                    "1024x1536",
                    "1820x1024",
                    "1024x1820",
                    "1024x2048",
                    "2048x1024",
                    "1434x1024",
                    "1024x1434",
                    "1024x1280",
                    "1280x1024",
                    "1024x1707",
                    "1707x1024",
                ),
            ),
            "style": (
                "style",
                ("any", "realistic_image", "digital_illustration", "realistic_image/b_and_w"),
            ),
        },
        aspect_ratio=("aspect_ratio", ("Not set", "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16")),
    ),
    _imagen("google/imagen-4", "Imagen 4", fast=False),
    _imagen("google/imagen-4-fast", "Imagen 4 Fast", fast=True),
    _imagen("google/imagen-4-ultra", "Imagen 4 Ultra", fast=False),
    Family(
        model="stability-ai/sdxl",
        modality="image",
        name="Stable Diffusion XL (community model: pass owner/name:version)",
        size=("1024x1024", "1152x896", "896x1152", "1216x832", "832x1216", "1344x768", "768x1344"),
        frames={"image": ("reference",)},
        mask="mask",
        count=("num_outputs", 4),
        inputs=_TUNING,
    ),
)

_BY_MODEL = {family.model: family for family in FAMILIES}


def family_for(model: str) -> Family | None:
    """The family of ``owner/name`` (exact match; versions are stripped by the caller)."""
    return _BY_MODEL.get(model)
