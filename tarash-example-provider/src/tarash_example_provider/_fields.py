"""What the Example API accepts: the ProviderSpec, and unified request fields -> API input fields."""

from collections.abc import Mapping
from typing import Any

from tarash.tarash_gateway import field_mappers as fm
from tarash.tarash_gateway import get_provider_field_mapping
from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.plugin import Capabilities, ModelFamily, ProviderSpec

PROVIDER, API_KEY_ENV, DEFAULT_BASE_URL = "example", "EXAMPLE_API_KEY", "http://127.0.0.1:8765"
VIDEO_MODEL, IMAGE_MODEL = "example-video-1", "example-image-1"
DURATIONS, RESOLUTIONS, IMAGE_COUNTS = (4, 8), ("180p", "240p"), (1, 2, 3, 4)
VIDEO_RATIOS, IMAGE_RATIOS = ("16:9", "9:16", "1:1", "4:3", "21:9"), ("1:1", "16:9", "9:16", "4:3")


def _one_video(_request: Any, count: Any) -> None:
    """The API renders one video per job: refuse more (the field itself is never sent)."""
    if count not in (None, 1):
        raise ValidationError("one video per job", field="number_of_videos", value=count, allowed=(1,))


def image_size(request: Any) -> tuple[int, int]:
    """Width and height from ``request.size`` ("640x480"), else 512 px along the aspect ratio."""
    if request.size is None:
        ratio_w, _, ratio_h = (request.aspect_ratio or "1:1").partition(":")
        ratio = int(ratio_w) / int(ratio_h)
        return (512, round(512 / ratio)) if ratio >= 1 else (round(512 * ratio), 512)
    sides = request.size.lower().split("x")
    if len(sides) != 2 or not all(side.isdigit() and 16 <= int(side) <= 1024 for side in sides):
        raise ValidationError("size must be WIDTHxHEIGHT, sides 16..1024", field="size", value=request.size)
    return int(sides[0]), int(sides[1])


VIDEO_FIELDS: dict[str, fm.FieldMapper] = {
    "prompt": fm.passthrough_field_mapper("prompt", required=True),
    "negative_prompt": fm.passthrough_field_mapper("negative_prompt"),
    "duration": fm.duration_field_mapper(DURATIONS, as_string=False),
    "aspect_ratio": fm.allowed_values_mapper("aspect_ratio", VIDEO_RATIOS),
    "resolution": fm.allowed_values_mapper("resolution", RESOLUTIONS),
    "seed": fm.passthrough_field_mapper("seed"),
    "audio": fm.passthrough_field_mapper("generate_audio"),
    "image_url": fm.single_image_field_mapper(("first_frame", "reference")),
    "number_of_videos": fm.FieldMapper("number_of_videos", _one_video),
}
IMAGE_FIELDS: dict[str, fm.FieldMapper] = {
    "prompt": fm.passthrough_field_mapper("prompt", required=True),
    "negative_prompt": fm.passthrough_field_mapper("negative_prompt"),
    "num_images": fm.allowed_values_mapper("n", IMAGE_COUNTS),
    "aspect_ratio": fm.allowed_values_mapper("aspect_ratio", IMAGE_RATIOS),
    "seed": fm.passthrough_field_mapper("seed"),
    "width": fm.FieldMapper("size", lambda request, _size: image_size(request)[0]),
    "height": fm.FieldMapper("size", lambda request, _size: image_size(request)[1]),
}


def mappers(model: str, modality: str) -> Mapping[str, fm.FieldMapper]:
    table = get_provider_field_mapping(PROVIDER) or SPEC.field_mappings
    prefix = fm.match_model_prefix(model, table)
    ours = tuple(m.prefix for m in SPEC.models if m.modality == modality)
    if prefix is None or (prefix in (VIDEO_MODEL, IMAGE_MODEL) and prefix not in ours):
        raise ValidationError(f"Unknown {modality} model {model!r}", field="model", value=model, allowed=ours)
    return table[prefix]


SPEC = ProviderSpec(
    name=PROVIDER,
    modalities={"video", "image"},
    capabilities=Capabilities(cancel=True, queue_position=True, progress_percent=True, logs=True),
    models=(
        ModelFamily(prefix=VIDEO_MODEL, modality="video", allowed={"duration_seconds": DURATIONS}),
        ModelFamily(prefix=IMAGE_MODEL, modality="image", allowed={"n": IMAGE_COUNTS}),
    ),
    field_mappings={VIDEO_MODEL: VIDEO_FIELDS, IMAGE_MODEL: IMAGE_FIELDS},
    api_key_env=API_KEY_ENV,  # core reads the key: config.api_key, else this variable
    base_url=DEFAULT_BASE_URL,  # the API root; config.base_url overrides it
    auth_scheme="Bearer",  # core sends "Authorization: Bearer <key>" with every request
    description="The Example API (reference server: python -m tarash_example_provider.server)",
)
