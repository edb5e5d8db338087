"""Replicate outputs: ``expires_at`` one hour after the prediction was created, downloaded with
``response.download()`` (checksum in the ledger) before the retention removes them, and an
expired output as OutputExpiredError."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import generate_image, generate_video, set_ledger
from tarash.tarash_gateway.exceptions import OutputExpiredError
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.models import ImageGenerationRequest, VideoGenerationRequest
from tarash_replicate.testing import FakeReplicateServer

VIDEO = os.urandom(200_000)


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path) -> Iterator[None]:
    set_ledger(tmp_path / "jobs.db")
    yield
    set_ledger(None)


def _serve_video(fake: FakeReplicateServer) -> None:
    fake.output_factory = lambda prediction: fake.put_output(
        prediction["id"], "output.mp4", VIDEO, "video/mp4"
    )


def test_expires_at_is_one_hour_after_creation(fake_replicate: FakeReplicateServer) -> None:
    _serve_video(fake_replicate)
    response = generate_video(fake_replicate.video_config(), VideoGenerationRequest(prompt="a cat"))
    created = datetime.fromisoformat(
        fake_replicate.prediction(response.request_id)["created_at"].replace("Z", "+00:00")
    )
    assert response.expires_at == created + timedelta(hours=1)


def test_download_before_the_hour_is_up(fake_replicate: FakeReplicateServer, tmp_path: Path) -> None:
    _serve_video(fake_replicate)
    response = generate_video(fake_replicate.video_config(), VideoGenerationRequest(prompt="a cat"))
    [saved] = response.download(tmp_path / "cat.mp4")
    assert saved.path.read_bytes() == VIDEO
    assert saved.sha256 == hashlib.sha256(VIDEO).hexdigest() and saved.size == len(VIDEO)
    store = get_ledger()
    assert store is not None
    record = store.get(response.request_id)
    assert record is not None
    assert [e.detail["sha256"] for e in store.events(record.key) if e.kind == "download"] == [saved.sha256]


def test_images_go_to_a_directory(fake_replicate: FakeReplicateServer, tmp_path: Path) -> None:
    pictures = [os.urandom(1000), os.urandom(2000)]

    def outputs(prediction: dict[str, Any]) -> list[str]:
        return [
            fake_replicate.put_output(prediction["id"], f"out-{i}.png", data, "image/png")
            for i, data in enumerate(pictures)
        ]

    fake_replicate.output_factory = outputs
    response = generate_image(fake_replicate.image_config(), ImageGenerationRequest(prompt="a cat"))
    saved = response.download(tmp_path)
    assert [s.path.read_bytes() for s in saved] == pictures
    assert [s.path.name for s in saved] == ["out-0.png", "out-1.png"]


def test_after_the_retention_the_download_is_an_expired_output(
    fake_replicate: FakeReplicateServer, tmp_path: Path
) -> None:
    _serve_video(fake_replicate)
    response = generate_video(fake_replicate.video_config(), VideoGenerationRequest(prompt="a cat"))
    fake_replicate.expire(response.request_id)
    with pytest.raises(OutputExpiredError) as caught:
        response.download(tmp_path / "cat.mp4")
    assert caught.value.status_code == 404 and fake_replicate.file_gets == 1
    assert response.expires_at is not None
    with pytest.raises(OutputExpiredError):
        response.download(tmp_path / "cat.mp4", now=response.expires_at)
    assert fake_replicate.file_gets == 1
    assert not (tmp_path / "cat.mp4").exists()
