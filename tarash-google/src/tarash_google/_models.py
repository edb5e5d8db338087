"""Google's video and image models: route, modes, allowed values, deprecation date and successor.

Sources for every row are in ``docs/providers/google.md``. Loaded on first use (a generation,
``tarash models google``), never by provider discovery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.plugin import ModelFamily

from ._names import GEMINI, VERTEX

log = logging.getLogger("tarash_google")

Route = Literal["veo", "omni", "imagen", "gemini_image"]
Mode = Literal["gemini", "vertex"]

#: The provider name that serves each mode.
PROVIDER_OF_MODE: Mapping[str, str] = {"gemini": GEMINI, "vertex": VERTEX}


@attrs.frozen(kw_only=True)
class GoogleModel:
    """One model id and what it accepts.

    Attributes:
        id: the model id as Google spells it (``veo-3.0-generate-001``).
        modality: ``"video"`` or ``"image"``.
        route: which REST route serves it (see ``docs/providers/google.md``).
        modes: where it is served: ``"gemini"`` (Gemini Developer API), ``"vertex"`` (Vertex AI).
        name: display name.
        allowed: Tarash request field -> the values Google accepts for this model.
        image_roles: the ``image_list`` roles this model takes.
        max_images: the most input images of the roles above.
        deprecated: ISO date Google deprecated the model on, if it did.
        successor: the model Google names as its replacement.
    """

    id: str
    modality: Literal["video", "image"]
    route: Route
    modes: frozenset[str]
    name: str
    allowed: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict)
    image_roles: tuple[str, ...] = ()
    max_images: int = 0
    deprecated: str | None = None
    successor: str | None = None

    def family(self) -> ModelFamily:
        """The row ``tarash models google`` / ``google-vertex`` prints."""
        served = " and ".join(
            {"gemini": "Gemini Developer API", "vertex": "Vertex AI"}[m] for m in sorted(self.modes)
        )
        note = f"{self.route} route on {served}"
        if self.deprecated:
            note += f"; DEPRECATED {self.deprecated}"
            note += f", successor {self.successor}" if self.successor else ", no successor named"
        return ModelFamily(
            prefix=self.id,
            modality=self.modality,
            name=self.name,
            allowed={field: values for field, values in self.allowed.items() if values},
            description=note,
        )


_VEO_ASPECT = ("16:9", "9:16")
_IMAGEN_ASPECT = ("1:1", "3:4", "4:3", "9:16", "16:9")
_GEMINI_IMAGE_ASPECT = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_BOTH = frozenset({"gemini", "vertex"})
_VERTEX_ONLY = frozenset({"vertex"})
_GEMINI_ONLY = frozenset({"gemini"})


def _veo(
    model_id: str,
    name: str,
    modes: frozenset[str],
    durations: tuple[int, ...],
    resolutions: tuple[str, ...],
    roles: tuple[str, ...],
    max_images: int,
    **deprecation: str,
) -> GoogleModel:
    return GoogleModel(
        id=model_id,
        modality="video",
        route="veo",
        modes=modes,
        name=name,
        allowed={
            "duration_seconds": durations,
            "aspect_ratio": _VEO_ASPECT,
            "resolution": resolutions,
            "number_of_videos": (1,),
        },
        image_roles=roles,
        max_images=max_images,
        **deprecation,
    )


_FRAMES = ("first_frame", "last_frame")
_VEO_31_ROLES = ("first_frame", "last_frame", "reference", "asset", "style")

MODELS: tuple[GoogleModel, ...] = (
    _veo("veo-2.0-generate-001", "Veo 2", _BOTH, (5, 6, 7, 8), ("720p",), _FRAMES, 2),
    _veo("veo-3.0-generate-001", "Veo 3", _BOTH, (4, 6, 8), ("720p", "1080p"), ("first_frame",), 1),
    _veo("veo-3.0-fast-generate-001", "Veo 3 Fast", _BOTH, (4, 6, 8), ("720p", "1080p"), ("first_frame",), 1),
    _veo(
        "veo-3.1-generate-preview",
        "Veo 3.1 (preview)",
        _GEMINI_ONLY,
        (4, 6, 8),
        ("720p", "1080p"),
        _VEO_31_ROLES,
        3,
        deprecated="2026-10-22",
        successor="gemini-omni-1.2-flash",
    ),
    _veo(
        "veo-3.1-fast-generate-preview",
        "Veo 3.1 Fast (preview)",
        _GEMINI_ONLY,
        (4, 6, 8),
        ("720p", "1080p"),
        _VEO_31_ROLES,
        3,
        deprecated="2026-10-22",
        successor="gemini-omni-1.2-flash",
    ),
    _veo(
        "veo-3.1-generate-001",
        "Veo 3.1",
        _VERTEX_ONLY,
        (4, 6, 8),
        ("720p", "1080p"),
        _VEO_31_ROLES,
        3,
        deprecated="2026-11-17",
    ),
    _veo(
        "veo-3.1-fast-generate-001",
        "Veo 3.1 Fast",
        _VERTEX_ONLY,
        (4, 6, 8),
        ("720p", "1080p"),
        _VEO_31_ROLES,
        3,
        deprecated="2026-11-17",
    ),
    GoogleModel(
        id="gemini-omni-1.2-flash",
        modality="video",
        route="omni",
        modes=_BOTH,
        name="Gemini Omni 1.2 Flash",
        allowed={
            "duration_seconds": tuple(range(3, 11)),
            "aspect_ratio": _VEO_ASPECT,
            "resolution": ("360p", "720p", "1080p", "4k"),
            "number_of_videos": (1,),
        },
        image_roles=("first_frame", "last_frame", "reference"),
        max_images=3,
    ),
    *(
        GoogleModel(
            id=model_id,
            modality="image",
            route="imagen",
            modes=_VERTEX_ONLY,
            name=name,
            allowed={"n": counts, "aspect_ratio": _IMAGEN_ASPECT, "size": sizes},
        )
        for model_id, name, counts, sizes in (
            ("imagen-4.0-generate-001", "Imagen 4", (1, 2, 3, 4), ("1K", "2K")),
            ("imagen-4.0-ultra-generate-001", "Imagen 4 Ultra", (1,), ("1K", "2K")),
            ("imagen-4.0-fast-generate-001", "Imagen 4 Fast", (1, 2, 3, 4), ()),
            ("imagen-3.0-generate-002", "Imagen 3", (1, 2, 3, 4), ()),
        )
    ),
    GoogleModel(
        id="gemini-2.5-flash-image",
        modality="image",
        route="gemini_image",
        modes=_BOTH,
        name="Gemini 2.5 Flash Image",
        allowed={"n": (1,), "aspect_ratio": _GEMINI_IMAGE_ASPECT, "size": ()},
        image_roles=("reference",),
        max_images=3,
    ),
    GoogleModel(
        id="gemini-3-pro-image-preview",
        modality="image",
        route="gemini_image",
        modes=_BOTH,
        name="Gemini 3 Pro Image (preview)",
        allowed={"n": (1,), "aspect_ratio": _GEMINI_IMAGE_ASPECT, "size": ("1K", "2K", "4K")},
        image_roles=("reference",),
        max_images=14,
    ),
)

BY_ID: Mapping[str, GoogleModel] = {model.id: model for model in MODELS}


def families(mode: Mode) -> tuple[ModelFamily, ...]:
    """The ``ProviderSpec.models`` rows of one mode."""
    return tuple(model.family() for model in MODELS if mode in model.modes)


def lookup(model_id: str, modality: str, mode: Mode) -> GoogleModel:
    """The table row for ``model_id``; ValidationError naming the right provider or the known ids.

    Logs a warning naming the successor when the model is deprecated.
    """
    model = BY_ID.get(model_id.removeprefix("models/").removeprefix("publishers/google/models/"))
    provider = PROVIDER_OF_MODE[mode]
    if model is None or model.modality != modality:
        known = sorted(m.id for m in MODELS if m.modality == modality and mode in m.modes)
        raise ValidationError(
            f"Unknown {modality} model {model_id!r} for provider {provider!r}; known: {', '.join(known)}",
            field="model",
            value=model_id,
            allowed=known,
        )
    if mode not in model.modes:
        other = PROVIDER_OF_MODE[next(iter(model.modes))]
        raise ValidationError(
            f"{model.id} is not served by {provider!r} "
            f"({'Vertex AI' if mode == 'vertex' else 'the Gemini Developer API'}); use provider={other!r}",
            field="model",
            value=model_id,
        )
    if model.deprecated:
        successor = f"; use {model.successor} instead" if model.successor else ""
        log.warning("Google deprecated %s on %s%s", model.id, model.deprecated, successor)
    return model
