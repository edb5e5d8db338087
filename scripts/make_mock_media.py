"""Render the tiny H.264 test-pattern clips shipped with tarash-core.

The offline "mock" video provider answers generation requests with real, playable
MP4 files so that tests, demos and downstream integrations can exercise download,
storage and playback code without network access or an API key. This script
renders one short clip per supported aspect ratio from ffmpeg's built-in lavfi
test sources (no fonts, images or network needed), each with a small coloured
square that moves from left to right over the clip's duration as a playhead.

Every clip is H.264 (libx264, yuv420p, +faststart), video only, at a low frame
rate and a high CRF so the whole set stays a few tens of kilobytes. The clips go
to ``tarash-core/src/tarash/tarash_gateway/_media/`` together with ``clips.json``,
which lists each file with its width, height, duration, frame rate and size as
read back from the written MP4.

Run from anywhere, with the ffmpeg binary that the ``imageio-ffmpeg`` package ships::

    pip install imageio-ffmpeg
    python scripts/make_mock_media.py

Re-running overwrites the clips and ``clips.json`` with byte-identical output for
the same ffmpeg build.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

MEDIA_DIR = (
    Path(__file__).resolve().parent.parent / "tarash-core" / "src" / "tarash" / "tarash_gateway"
) / "_media"
MAX_CLIP_BYTES = 25_000
MAX_TOTAL_BYTES = 200_000
CRF = 40
MAX_RATE = "40k"


@dataclass(frozen=True)
class Clip:
    file: str
    aspect_ratio: str
    width: int
    height: int
    duration: int
    fps: int
    source: str
    box_colour: str


CLIPS = (
    Clip("16x9_180p_4s.mp4", "16:9", 320, 180, 4, 8, "testsrc2", "white"),
    Clip("16x9_180p_8s.mp4", "16:9", 320, 180, 8, 8, "smptehdbars", "red"),
    Clip("9x16_180p_4s.mp4", "9:16", 180, 320, 4, 8, "rgbtestsrc", "yellow"),
    Clip("1x1_240p_4s.mp4", "1:1", 240, 240, 4, 10, "testsrc", "cyan"),
    Clip("4x3_180p_4s.mp4", "4:3", 240, 180, 4, 8, "smptebars", "magenta"),
    Clip("21x9_180p_4s.mp4", "21:9", 420, 180, 4, 10, "colorspectrum=type=all", "black"),
)


def filter_graph(clip: Clip) -> str:
    """Return the lavfi graph: the clip's test source with a moving playhead square."""
    box = max(clip.height // 10, 8)
    name, _, options = clip.source.partition("=")
    common = f"size={clip.width}x{clip.height}:rate={clip.fps}:duration={clip.duration}"
    background = f"{name}={options + ':' if options else ''}{common}"
    playhead = f"color=c={clip.box_colour}:size={box}x{box}:rate={clip.fps}"
    position = f"x='(W-w)*t/{clip.duration}':y='H-h-{box // 2}'"
    return f"{background}[bg];{playhead}[box];[bg][box]overlay={position}:shortest=1[v]"


def render(ffmpeg: str, clip: Clip, target: Path) -> None:
    """Encode ``clip`` to ``target``, writing a ``.part`` file first and renaming it."""
    partial = target.with_name(target.name + ".part")
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-filter_complex",
        filter_graph(clip),
        "-map",
        "[v]",
        "-frames:v",
        str(clip.duration * clip.fps),
        "-an",
        "-map_metadata",
        "-1",
        "-c:v",
        "libx264",
        "-preset",
        "veryslow",
        "-profile:v",
        "main",
        "-threads",
        "1",
        "-crf",
        str(CRF),
        "-maxrate",
        MAX_RATE,
        "-bufsize",
        MAX_RATE,
        "-g",
        str(clip.duration * clip.fps),
        "-pix_fmt",
        "yuv420p",
        "-bsf:v",
        "filter_units=remove_types=6",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(partial),
    ]
    subprocess.run(command, check=True)
    os.replace(partial, target)


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for each ISO-BMFF box in ``data[start:end]``."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, start + 8)[0]
            header = 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise ValueError(f"malformed {kind!r} box at offset {start}")
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def child(data: bytes, path: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Return ``(payload_start, box_end)`` of the first box along a ``/``-separated path."""
    end = len(data) if end is None else end
    for name in path.split("/"):
        for kind, payload, box_end in iter_boxes(data, start, end):
            if kind == name:
                start, end = payload, box_end
                break
        else:
            raise ValueError(f"no {path!r} box")
    return start, end


def measure(path: Path) -> dict[str, int | float]:
    """Read size, frame count, timing and dimensions of the single video track in ``path``."""
    data = path.read_bytes()
    if data[4:8] != b"ftyp":
        raise ValueError(f"{path.name}: does not start with an ftyp box")
    moov = child(data, "moov")
    tracks = [(p, e) for kind, p, e in iter_boxes(data, *moov) if kind == "trak"]
    if len(tracks) != 1:
        raise ValueError(f"{path.name}: expected one track, found {len(tracks)}")
    trak = tracks[0]

    hdlr, _ = child(data, "mdia/hdlr", *trak)
    if data[hdlr + 8 : hdlr + 12] != b"vide":
        raise ValueError(f"{path.name}: the only track is not video")

    mdhd, _ = child(data, "mdia/mdhd", *trak)
    if data[mdhd] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mdhd + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, mdhd + 12)

    stsz, _ = child(data, "mdia/minf/stbl/stsz", *trak)
    frames = struct.unpack_from(">I", data, stsz + 8)[0]

    _, tkhd_end = child(data, "tkhd", *trak)
    width, height = struct.unpack_from(">II", data, tkhd_end - 8)

    seconds = duration / timescale
    return {
        "width": width >> 16,
        "height": height >> 16,
        "duration_seconds": round(seconds, 6),
        "fps": round(frames / seconds, 6),
        "bytes": len(data),
    }


def main() -> int:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    MEDIA_DIR.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, str | int | float]] = []
    total = 0
    for clip in CLIPS:
        target = MEDIA_DIR / clip.file
        render(ffmpeg, clip, target)
        facts = measure(target)
        expected = {
            "width": clip.width,
            "height": clip.height,
            "duration_seconds": float(clip.duration),
            "fps": float(clip.fps),
        }
        wrong = {k: facts[k] for k, v in expected.items() if facts[k] != v}
        if wrong:
            raise SystemExit(f"{clip.file}: expected {expected}, measured {wrong}")
        if facts["bytes"] > MAX_CLIP_BYTES:
            raise SystemExit(f"{clip.file}: {facts['bytes']} bytes exceeds {MAX_CLIP_BYTES}")
        total += int(facts["bytes"])
        manifest.append({"file": clip.file, "aspect_ratio": clip.aspect_ratio, **facts})
        print(f"{clip.file}: {facts['bytes']} bytes")

    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"clips total {total} bytes, over the {MAX_TOTAL_BYTES} budget")
    (MEDIA_DIR / "clips.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"total: {total} bytes in {len(manifest)} clips -> {MEDIA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
