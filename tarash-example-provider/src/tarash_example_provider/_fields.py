"""What the Example API accepts, and how a unified Tarash request maps onto its input fields.

This module is imported by the entry module, so it must stay cheap: tarash-core only, no httpx.
"""

from __future__ import annotations

from typing import Any

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.field_mappers import (
    FieldMapper,
    allowed_values_mapper,
    duration_field_mapper,
    passthrough_field_mapper,
    single_image_field_mapper,
)
from tarash.tarash_gateway.plugin import Capabilities, ModelFamily, ProviderSpec

PROVIDER = "example"
API_KEY_ENV = "EXAMPLE_API_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:8765"

VIDEO_MODEL = "example-video-1"
IMAGE_MODEL = "example-image-1"
DURATIONS = (4, 8)
VIDEO_ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "21:9")
VIDEO_RESOLUTIONS = ("180p", "240p")
IMAGE_COUNTS = (1, 2, 3, 4)
IMAGE_ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3")
MAX_SIDE = 1024
DEFAULT_LONG_SIDE = 512


# --8<-- [start:mappers]
def _one_video(_request: Any, count: Any) -> None:
    """The API renders one video per job: refuse more (the field itself is never sent)."""
    if count not in (None, 1):
        raise ValidationError(
            f"number_of_videos={count!r} is not supported: one video per job",
            field="number_of_videos",
            value=count,
            allowed=(1,),
        )


def image_size(request: Any) -> tuple[int, int]:
    """Width and height from ``request.size`` ("640x480"), else from the aspect ratio."""
    size = request.size
    if size is not None:
        width_text, _, height_text = size.lower().partition("x")
        if not (width_text.isdigit() and height_text.isdigit()) or not all(
            16 <= int(side) <= MAX_SIDE for side in (width_text, height_text)
        ):
            raise ValidationError(
                f"size={size!r} must be WIDTHxHEIGHT with sides between 16 and {MAX_SIDE}",
                field="size",
                value=size,
            )
        return int(width_text), int(height_text)
    ratio_w, _, ratio_h = (request.aspect_ratio or "1:1").partition(":")
    ratio = int(ratio_w) / int(ratio_h)
    if ratio >= 1:
        return DEFAULT_LONG_SIDE, round(DEFAULT_LONG_SIDE / ratio)
    return round(DEFAULT_LONG_SIDE * ratio), DEFAULT_LONG_SIDE


VIDEO_FIELDS: dict[str, FieldMapper] = {
    "prompt": passthrough_field_mapper("prompt", required=True),
    "negative_prompt": passthrough_field_mapper("negative_prompt"),
    "duration": duration_field_mapper(DURATIONS, as_string=False),
    "aspect_ratio": allowed_values_mapper("aspect_ratio", VIDEO_ASPECT_RATIOS),
    "resolution": allowed_values_mapper("resolution", VIDEO_RESOLUTIONS),
    "seed": passthrough_field_mapper("seed"),
    "audio": passthrough_field_mapper("generate_audio"),
    "image_url": single_image_field_mapper(("first_frame", "reference")),
    "number_of_videos": FieldMapper("number_of_videos", _one_video),
}

IMAGE_FIELDS: dict[str, FieldMapper] = {
    "prompt": passthrough_field_mapper("prompt", required=True),
    "negative_prompt": passthrough_field_mapper("negative_prompt"),
    "num_images": allowed_values_mapper("n", IMAGE_COUNTS),
    "aspect_ratio": allowed_values_mapper("aspect_ratio", IMAGE_ASPECT_RATIOS),
    "seed": passthrough_field_mapper("seed"),
    "width": FieldMapper("size", lambda request, _size: image_size(request)[0]),
    "height": FieldMapper("size", lambda request, _size: image_size(request)[1]),
}
# --8<-- [end:mappers]

# --8<-- [start:spec]
SPEC = ProviderSpec(
    name=PROVIDER,
    modalities={"video", "image"},
    capabilities=Capabilities(
        cancel=True, queue_position=True, progress_percent=True, logs=True, resume=True
    ),
    models=(
        ModelFamily(
            prefix=VIDEO_MODEL,
            modality="video",
            name="Example Video 1",
            allowed={
                "duration_seconds": DURATIONS,
                "aspect_ratio": VIDEO_ASPECT_RATIOS,
                "resolution": VIDEO_RESOLUTIONS,
            },
            description="test-pattern MP4 clips from the reference server",
        ),
        ModelFamily(
            prefix=IMAGE_MODEL,
            modality="image",
            name="Example Image 1",
            allowed={"n": IMAGE_COUNTS, "aspect_ratio": IMAGE_ASPECT_RATIOS},
            description="PNG test patterns from the reference server",
        ),
    ),
    field_mappings={VIDEO_MODEL: VIDEO_FIELDS, IMAGE_MODEL: IMAGE_FIELDS},
    api_key_env=API_KEY_ENV,
    description="The Example API (reference server: python -m tarash_example_provider.server)",
)
# --8<-- [end:spec]
