"""The mock provider's media: the bundled MP4 test-pattern clips (picked by aspect ratio, then
duration) and the PNG test patterns drawn on the fly, returned as ``file://`` URLs or as bytes;
:mod:`tarash.tarash_gateway.mock` builds its responses with them. Standard-library modules load at
the first call, never at discovery.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .exceptions import ValidationError
from .models import ImageGenerationResponse, MediaContent, MockResponse, VideoGenerationResponse

if TYPE_CHECKING:
    from pathlib import Path

    from .plugin import JobRef

__all__ = [
    "MEDIA_FOLDER",
    "find_best_clip",
    "image_response",
    "image_size",
    "render_png",
    "video_response",
]

#: The folder of the bundled clips and their index, ``clips.json``.
MEDIA_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_media")


def _media_path(name: str) -> Path:
    from pathlib import Path

    return Path(MEDIA_FOLDER, name)


@lru_cache(maxsize=1)
def _clips() -> tuple[dict[str, Any], ...]:
    import json

    return tuple(json.loads(_media_path("clips.json").read_text()))


def _ratio(text: str | None) -> float:
    if not text or ":" not in text:
        return 16 / 9
    width, height = text.split(":", 1)
    try:
        return float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        return 16 / 9


def find_best_clip(aspect_ratio: str | None, duration_seconds: float | None) -> dict[str, Any]:
    """The bundled clip closest to the wanted aspect ratio, then to the wanted duration."""
    want_ratio = _ratio(aspect_ratio)
    want_duration = float(duration_seconds or 4)

    def score(clip: dict[str, Any]) -> tuple[float, float]:
        ratio = clip["width"] / clip["height"]
        return (abs(ratio - want_ratio), abs(clip["duration_seconds"] - want_duration))

    return min(_clips(), key=score)


def video_response(config: Any, job: JobRef, outcome: MockResponse) -> VideoGenerationResponse:
    request_video = outcome.output_video
    if request_video is not None:
        video: Any = request_video
        clip: dict[str, Any] = {}
    else:
        clip = find_best_clip(job.data.get("aspect_ratio"), job.data.get("duration"))
        path = _media_path(clip["file"])
        if outcome.output_video_type == "content":
            video = MediaContent(content=path.read_bytes(), content_type="video/mp4")
        else:
            video = path.resolve().as_uri()
    if outcome.output_video_type == "content" and isinstance(video, str):
        video = _load(video)
    return VideoGenerationResponse(
        request_id=job.job_id,
        video=video,
        content_type="video/mp4",
        duration=clip.get("duration_seconds"),
        resolution=f"{clip['width']}x{clip['height']}" if clip else None,
        aspect_ratio=clip.get("aspect_ratio"),
        is_mock=True,
        raw_response={"mock": True, "clip": clip.get("file")},
    )


def _load(url: str) -> MediaContent:
    if url.startswith("data:"):
        # lazy: discovery loads this module; records and ids load at the first call
        from .utils import parse_data_uri

        return parse_data_uri(url)
    if url.startswith("file://"):
        from pathlib import Path
        from urllib.parse import unquote, urlparse

        return MediaContent(content=Path(unquote(urlparse(url).path)).read_bytes(), content_type="video/mp4")
    raise ValidationError(
        "MockResponse.output_video_type='content' needs a file or data URL", field="output_video", value=url
    )


def image_size(request: Any) -> tuple[int, int]:
    size = getattr(request, "size", None)
    if isinstance(size, str) and "x" in size:
        try:
            width, height = (int(p) for p in size.lower().split("x", 1))
            if 0 < width <= 2048 and 0 < height <= 2048:
                return width, height
        except ValueError:
            pass
    ratio = _ratio(getattr(request, "aspect_ratio", None))
    return (256, max(1, round(256 / ratio))) if ratio >= 1 else (max(1, round(256 * ratio)), 256)


def image_response(config: Any, job: JobRef, outcome: MockResponse) -> ImageGenerationResponse:
    if outcome.output_images:
        return ImageGenerationResponse(
            request_id=job.job_id,
            images=list(outcome.output_images),
            is_mock=True,
            raw_response={"mock": True},
        )
    width, height = int(job.data.get("width", 256)), int(job.data.get("height", 256))
    count = int(job.data.get("n", 1))
    images = []
    for index in range(count):
        png = render_png(width, height, seed=hash((job.job_id, index)) & 0xFFFF)
        if outcome.output_video_type == "content":
            images.append(MediaContent(content=png, content_type="image/png").to_data_uri())
        else:
            images.append(_write_temp(f"{job.job_id}_{index}.png", png))
    return ImageGenerationResponse(
        request_id=job.job_id,
        images=images,
        content_type="image/png",
        is_mock=True,
        raw_response={"mock": True, "width": width, "height": height},
    )


def _write_temp(name: str, data: bytes) -> str:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / "tarash-mock"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path.resolve().as_uri()


def render_png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid RGB PNG test pattern (colour bars tinted by ``seed``), drawn without dependencies."""
    import random
    import struct
    import zlib

    rng = random.Random(seed)
    tint = [rng.randrange(0, 96) for _ in range(3)]
    bars = [
        (192, 192, 192),
        (192, 192, 0),
        (0, 192, 192),
        (0, 192, 0),
        (192, 0, 192),
        (192, 0, 0),
        (0, 0, 192),
    ]
    row = bytearray()
    for x in range(width):
        r, g, b = bars[x * len(bars) // width]
        row += bytes(((r + tint[0]) % 256, (g + tint[1]) % 256, (b + tint[2]) % 256))
    raw = b"".join(b"\x00" + bytes(row) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
