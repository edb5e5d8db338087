"""response.download() for what needs no server: bytes and data URIs, destinations, expiry."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tarash.tarash_gateway.exceptions import OutputExpiredError, ValidationError
from tarash.tarash_gateway.models import ImageGenerationResponse, MediaContent, VideoGenerationResponse

CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 10


def test_media_content_is_written_atomically_with_its_checksum(tmp_path: Path) -> None:
    response = VideoGenerationResponse(request_id="r1", video=MediaContent(CLIP, "video/mp4"))
    [saved] = response.download(tmp_path)
    assert saved.path.parent == tmp_path and saved.path.suffix == ".mp4"
    assert saved.path.read_bytes() == CLIP
    assert (saved.sha256, saved.size, saved.source) == (hashlib.sha256(CLIP).hexdigest(), len(CLIP), "bytes")
    assert [p.name for p in tmp_path.iterdir()] == [saved.path.name]


async def test_the_async_twin_writes_the_same(tmp_path: Path) -> None:
    uri = f"data:image/png;base64,{base64.b64encode(b'png bytes').decode()}"
    response = ImageGenerationResponse(request_id="r1", images=[uri])
    [saved] = await response.download_async(tmp_path / "one.png")
    assert saved.path == tmp_path / "one.png" and saved.path.read_bytes() == b"png bytes"
    assert saved.source == "data:image/png"


def test_several_outputs_need_a_directory(tmp_path: Path) -> None:
    uri = f"data:image/png;base64,{base64.b64encode(b'x').decode()}"
    response = ImageGenerationResponse(request_id="r1", images=[uri, uri])
    with pytest.raises(ValidationError, match="2 outputs need a directory"):
        response.download(tmp_path / "one.png")
    assert list(tmp_path.iterdir()) == []


def test_expiry_is_checked_before_any_request(tmp_path: Path) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    response = VideoGenerationResponse(request_id="r1", video="https://127.0.0.1:9/gone.mp4", expires_at=past)
    with pytest.raises(OutputExpiredError) as caught:
        response.download(tmp_path)
    assert (caught.value.url, caught.value.expires_at, caught.value.status_code) == (
        "https://127.0.0.1:9/gone.mp4",
        past,
        None,
    )
    assert not caught.value.retryable
    # Bytes in hand never expire.
    kept = VideoGenerationResponse(request_id="r1", video=MediaContent(CLIP, "video/mp4"), expires_at=past)
    [saved] = kept.download(tmp_path)
    assert saved.path.read_bytes() == CLIP
