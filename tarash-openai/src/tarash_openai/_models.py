"""The gpt-image-2.x models and the values each accepts, as openai-python 3.57.0 types list them.

Source: ``openai/types/image_model.py``, ``image_generate_params.py`` and ``image_edit_params.py``
of the ``openai`` 3.57.0 wheel. Where those docstrings name models for a value (``xhigh`` and
``max`` quality, arbitrary ``WIDTHxHEIGHT`` sizes, ``input_fidelity``), only the named models get
it; the others get the values documented for every GPT image model.
"""

from __future__ import annotations

import attrs

from tarash.tarash_gateway.plugin import ModelFamily

#: The openai-python release whose types this table follows.
SDK_VERSION = "3.57.0"

QUALITIES = ("low", "medium", "high", "auto")
QUALITIES_2_5 = (*QUALITIES, "xhigh", "max")
BACKGROUNDS = ("transparent", "opaque", "auto")
OUTPUT_FORMATS = ("png", "webp", "jpeg", "gif", "svg")
MODERATION = ("low", "auto")
COMPLEXITY = ("low", "medium", "high")
INPUT_FIDELITY = ("high", "low")
STANDARD_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
#: Image counts per call ("Must be between 1 and 10").
COUNTS = tuple(range(1, 11))
#: Input images per edit ("You can provide up to 16 images").
MAX_EDIT_IMAGES = 16
MAX_PROMPT_CHARS = 32_000
#: GIF ``frame_count`` ("integers from 2 through 16").
FRAME_COUNTS = tuple(range(2, 17))

#: Custom sizes: both sides divisible by 16, aspect between 1:3 and 3:1, at most 3840x2160.
SIZE_STEP = 16
MAX_EDGE = 3840
MAX_PIXELS = 3840 * 2160

#: Aspect ratios mapped onto the standard sizes (every model).
STANDARD_ASPECTS = {"auto": "auto", "1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
#: More aspect ratios, for the models that take any ``WIDTHxHEIGHT``.
CUSTOM_ASPECTS = {
    **STANDARD_ASPECTS,
    "16:9": "1536x864",
    "9:16": "864x1536",
    "4:3": "1024x768",
    "3:4": "768x1024",
    "21:9": "2016x864",
    "9:21": "864x2016",
}

#: Models the SDK still lists but the API no longer serves, with what replaced them.
RETIRED = {
    "gpt-image-1": "GPT Image 1 was shut down on October 23, 2026; use gpt-image-2.5-sunburst or "
    "gpt-image-2.5-flare instead",
    "dall-e-2": "DALL-E 2 was retired on May 12, 2026; use a GPT image model instead",
    "dall-e-3": "DALL-E 3 was retired on May 12, 2026; use a GPT image model instead",
}


@attrs.frozen
class ImageModel:
    """One model id and what it accepts beyond what every GPT image model accepts."""

    id: str
    name: str
    qualities: tuple[str, ...] = QUALITIES
    custom_sizes: bool = False
    input_fidelity: tuple[str, ...] = INPUT_FIDELITY

    @property
    def aspects(self) -> dict[str, str]:
        return CUSTOM_ASPECTS if self.custom_sizes else STANDARD_ASPECTS


MODELS: dict[str, ImageModel] = {
    model.id: model
    for model in (
        # "For gpt-image-2, omit this parameter" (input_fidelity).
        ImageModel("gpt-image-2", "GPT Image 2", custom_sizes=True, input_fidelity=()),
        ImageModel(
            "gpt-image-2-2026-04-21", "GPT Image 2 (2026-04-21)", custom_sizes=True, input_fidelity=()
        ),
        ImageModel("gpt-image-2.5-sunburst", "GPT Image 2.5 Sunburst", QUALITIES_2_5, custom_sizes=True),
        ImageModel(
            "gpt-image-2.5-sunburst-2026-09-08",
            "GPT Image 2.5 Sunburst (2026-09-08)",
            QUALITIES_2_5,
            custom_sizes=True,
        ),
        ImageModel("gpt-image-2.5-flare", "GPT Image 2.5 Flare", QUALITIES_2_5, custom_sizes=True),
        ImageModel(
            "gpt-image-2.5-flare-2026-09-08",
            "GPT Image 2.5 Flare (2026-09-08)",
            QUALITIES_2_5,
            custom_sizes=True,
        ),
        ImageModel("gpt-image-2.6-sunburst", "GPT Image 2.6 Sunburst"),
        ImageModel("gpt-image-2.6-flare", "GPT Image 2.6 Flare"),
    )
}


def families() -> tuple[ModelFamily, ...]:
    """The table as :class:`ModelFamily` records (for ``tarash models`` and the docs)."""
    return tuple(
        ModelFamily(
            prefix=model.id,
            modality="image",
            name=model.name,
            allowed={
                "n": COUNTS,
                "quality": model.qualities,
                "aspect_ratio": tuple(model.aspects),
                "background": BACKGROUNDS,
                "output_format": OUTPUT_FORMATS,
                "moderation": MODERATION,
            },
            description="any WIDTHxHEIGHT size (sides divisible by 16, up to 3840x2160)"
            if model.custom_sizes
            else "sizes 1024x1024, 1536x1024, 1024x1536 or auto",
        )
        for model in MODELS.values()
    )
