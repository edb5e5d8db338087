"""Local inputs (paths, bytes, binary files) are read into MediaContent when a request is built."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import _local_media
from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import (
    ImageGenerationRequest,
    ImageType,
    MediaContent,
    VideoGenerationRequest,
)
from tarash.tarash_gateway.serialization import to_json

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "frame.png"
    path.write_bytes(PNG)
    return path


def test_paths_bytes_and_binary_files_become_media_content(png: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.bin"
    clip.write_bytes(MP4)
    with clip.open("rb") as stream:
        request = VideoGenerationRequest(
            "a cat",
            image_list=[{"image": png, "type": "first_frame"}, ImageType(PNG, "last_frame")],
            video=stream,
        )
    assert request.image_list[0].image == MediaContent(content=PNG, content_type="image/png")
    assert request.image_list[1].image == MediaContent(content=PNG, content_type="image/png")
    assert request.video == MediaContent(content=MP4, content_type="video/mp4")
    edit = ImageGenerationRequest("x", mask_image=memoryview(PNG))
    assert edit.mask_image == MediaContent(content=PNG, content_type="image/png")


def test_the_file_is_read_once_when_the_request_is_built(png: Path) -> None:
    request = VideoGenerationRequest("a cat", video=png)
    png.write_bytes(b"changed")
    assert request.video == MediaContent(content=PNG, content_type="image/png")
    assert '"content_type":"image/png"' in to_json(request).replace(" ", "")


def test_the_name_gives_the_type_when_the_content_does_not(tmp_path: Path) -> None:
    path = tmp_path / "clip.mov"
    path.write_bytes(b"unknown bytes")
    assert VideoGenerationRequest("x", video=path).video == MediaContent(
        content=b"unknown bytes", content_type="video/quicktime"
    )


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"GIF89arest", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x1a\x45\xdf\xa3rest", "video/webm"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"ID3rest", "audio/mpeg"),
        (b"plain", None),
    ],
)
def test_signatures(data: bytes, content_type: str | None) -> None:
    assert _local_media.sniff_content_type(data) == content_type


@pytest.mark.parametrize(
    ("make", "field", "message"),
    [
        (lambda tmp: {"video": tmp / "missing.mp4"}, "video", "no such file"),
        (lambda tmp: {"video": tmp}, "video", "is not a file"),
        (lambda tmp: {"video": b""}, "video", "the local input is empty"),
        (lambda tmp: {"video": b"plain bytes"}, "video", "cannot tell the media type"),
        (lambda tmp: {"video": io.StringIO("text")}, "video", "the file object is not binary"),
        (
            lambda tmp: {"image_list": [{"image": tmp / "missing.png", "type": "reference"}]},
            "image_list[0].image",
            "no such file",
        ),
    ],
)
def test_bad_local_inputs_are_refused_naming_the_field(
    tmp_path: Path, make: object, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        VideoGenerationRequest("x", **make(tmp_path))  # type: ignore[operator]
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_closed_file_is_refused() -> None:
    stream = io.BytesIO(PNG)
    stream.close()
    with pytest.raises(ValidationError, match="mask_image: cannot read the file object"):
        ImageGenerationRequest("x", mask_image=stream)


def test_an_unreadable_file_is_refused(png: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(Its open is refused as a file without read permission is: CI runs as root, whom
    ``chmod 0`` does not stop.)"""

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(png))

    monkeypatch.setattr(_local_media, "open", denied, raising=False)
    with pytest.raises(ValidationError, match=r"video: cannot read '.*': Permission denied"):
        VideoGenerationRequest("x", video=png)


def test_inputs_above_the_cap_are_refused_before_reading_them_all(
    png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_local_media, "MAX_LOCAL_INPUT_BYTES", 16)
    for value in (png, PNG, io.BytesIO(PNG)):
        with pytest.raises(ValidationError, match="more than 16"):
            VideoGenerationRequest("x", video=value)


def test_urls_and_media_content_are_unchanged() -> None:
    media = MediaContent(content=PNG, content_type="image/png")
    assert VideoGenerationRequest("x", video="https://e.com/v.mp4").video == "https://e.com/v.mp4"
    assert VideoGenerationRequest("x", video=media).video is media
