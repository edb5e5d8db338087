"""Outputs that outlive their URLs: the lifetime asked for per call, ``expires_at`` on responses,
``response.download()`` (and async, and ``tarash jobs download``) writing the fake's bytes with
their checksum in the ledger, and expired outputs as OutputExpiredError."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from tarash.tarash_gateway import generate_video, set_ledger
from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.exceptions import OutputExpiredError
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
from tarash_fal.testing import FakeFalServer

VIDEO = os.urandom(300_000)


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path) -> Iterator[None]:
    set_ledger(tmp_path / "jobs.db")
    yield
    set_ledger(None)


@pytest.fixture
def fake(make_server: Any) -> FakeFalServer:
    server: FakeFalServer = make_server(queue_polls=0, processing_polls=0)
    url = server.put_file("clip.mp4", VIDEO, "video/mp4")
    server.result_factory = lambda submission: {"video": {"url": url, "content_type": "video/mp4"}}
    return server


def _config(fake: FakeFalServer, **fields: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        model="fal-ai/veo3",
        provider="fal",
        api_key=fake.api_key,
        base_url=fake.base_url,
        poll_interval=0.01,
        timeout=30,
        provider_config={"ca_bundle": fake.ca_path},
        **fields,
    )


def _trust(fake: FakeFalServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=fake.ca_path)


def _submitted_at(fake: FakeFalServer, request_id: str) -> Any:
    store = get_ledger()
    assert store is not None
    record = store.get(request_id)
    assert record is not None and record.job is not None
    return record.job.submitted_at


def test_a_requested_lifetime_is_sent_and_sets_expires_at(fake: FakeFalServer) -> None:
    response = generate_video(_config(fake, output_lifetime=3600), VideoGenerationRequest(prompt="a cat"))
    headers = fake.submissions[0]["headers"]
    assert json.loads(headers["x-fal-object-lifecycle-preference"]) == {"expiration_duration_seconds": 3600}
    assert response.expires_at == _submitted_at(fake, response.request_id) + timedelta(seconds=3600)


def test_without_a_lifetime_outputs_expire_after_fals_7_day_minimum(fake: FakeFalServer) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    assert "x-fal-object-lifecycle-preference" not in fake.submissions[0]["headers"]
    assert response.expires_at == _submitted_at(fake, response.request_id) + timedelta(days=7)


def test_download_writes_the_fakes_bytes_and_records_the_checksum(
    fake: FakeFalServer, tmp_path: Path
) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    out = tmp_path / "out"
    out.mkdir()
    [saved] = response.download(out, verify=_trust(fake))
    digest = hashlib.sha256(VIDEO).hexdigest()
    assert saved.path.read_bytes() == VIDEO
    assert (saved.sha256, saved.size, saved.path.parent) == (digest, len(VIDEO), out)
    assert [p.name for p in out.iterdir()] == [saved.path.name]  # no temporary file left
    store = get_ledger()
    assert store is not None
    record = store.get(response.request_id)
    assert record is not None
    downloads = [e.detail for e in store.events(record.key) if e.kind == "download"]
    assert downloads == [
        {"path": str(saved.path), "sha256": digest, "bytes": len(VIDEO), "source": response.video}
    ]


async def test_download_async_to_a_file_path(fake: FakeFalServer, tmp_path: Path) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    [saved] = await response.download_async(tmp_path / "mine.mp4", verify=_trust(fake))
    assert saved.path == tmp_path / "mine.mp4"
    assert saved.path.read_bytes() == VIDEO and saved.sha256 == hashlib.sha256(VIDEO).hexdigest()


def test_an_output_past_expires_at_is_refused_before_any_request(fake: FakeFalServer, tmp_path: Path) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    assert response.expires_at is not None
    gone = attrs.evolve(response, expires_at=response.expires_at - timedelta(days=8))
    with pytest.raises(OutputExpiredError) as caught:
        gone.download(tmp_path, verify=_trust(fake))
    assert caught.value.status_code is None and caught.value.phase == "download"
    assert not caught.value.retryable
    assert fake.platform_counts["file"] == 0


def test_an_output_the_server_deleted_is_an_expired_output(fake: FakeFalServer, tmp_path: Path) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    assert isinstance(response.video, str)
    fake.expire(response.video)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputExpiredError) as caught:
        response.download(out, verify=_trust(fake))
    assert (caught.value.status_code, caught.value.url) == (404, response.video)
    assert fake.platform_counts["file"] == 1
    assert list(out.iterdir()) == []


def test_tarash_jobs_download(
    fake: FakeFalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = generate_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    out = tmp_path / "out"
    out.mkdir()
    code = main(
        ["jobs", "download", response.request_id, "--out", str(out), "--ca-bundle", fake.ca_path, "--json"]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    [file] = printed["files"]
    assert Path(file["path"]).read_bytes() == VIDEO
    assert file["sha256"] == hashlib.sha256(VIDEO).hexdigest() and file["bytes"] == len(VIDEO)
    fake.expire(response.video)  # type: ignore[arg-type]
    assert (
        main(["jobs", "download", response.request_id, "--out", str(out), "--ca-bundle", fake.ca_path]) == 8
    )
    assert "expire" in capsys.readouterr().err
