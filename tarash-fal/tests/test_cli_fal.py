"""`tarash generate ... --provider fal` against the fake fal server, through the real fal-client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.mock import MEDIA_DIR, render_png
from tarash.tarash_gateway.models import MediaContent
from tarash_fal.testing import FakeFalServer

CLIP = (MEDIA_DIR / "16x9_180p_4s.mp4").read_bytes()
PNG = render_png(32, 18, seed=3)


def inline_result(submission: dict[str, Any]) -> dict[str, Any]:
    """Results carry the media inline (data: URIs), so the CLI's download needs no CDN."""
    if "veo" in submission["path"]:
        uri = MediaContent(content=CLIP, content_type="video/mp4").to_data_uri()
        return {"video": {"url": uri, "content_type": "video/mp4"}, "seed": 1}
    uri = MediaContent(content=PNG, content_type="image/png").to_data_uri()
    return {"images": [{"url": uri, "width": 32, "height": 18, "content_type": "image/png"}]}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFalServer]:
    from tarash.tarash_gateway import default_gateway

    with FakeFalServer(result_factory=inline_result) as fake:
        monkeypatch.setenv("FAL_KEY", fake.api_key)
        yield fake
    default_gateway().transport.close()


def fal_args(server: FakeFalServer, *extra: str) -> list[str]:
    return [
        "--provider",
        "fal",
        "--base-url",
        server.base_url,
        "--poll-interval",
        "0.02",
        "--provider-config",
        f"ca_bundle={server.ca_path}",
        *extra,
    ]


def test_generate_video_with_fal(
    server: FakeFalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cat.mp4"
    code = main(
        [
            "generate",
            "video",
            "a cat",
            "--model",
            "fal-ai/veo3",
            "--duration",
            "8",
            "--aspect-ratio",
            "16:9",
            *fal_args(server, "--out", str(out), "--json"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert (data["provider"], data["model"], data["is_mock"]) == ("fal", "fal-ai/veo3", False)
    assert out.read_bytes() == CLIP and CLIP[4:8] == b"ftyp"
    assert server.counts == {"submit": 1, "status": 5, "result": 1, "cancel": 0}
    submission = server.submissions[0]
    assert submission["path"] == "fal-ai/veo3"
    assert submission["payload"] == {"prompt": "a cat", "duration": "8s", "aspect_ratio": "16:9"}
    assert server.api_key not in captured.out + captured.err


def test_generate_image_with_fal_in_a_subprocess(server: FakeFalServer, tmp_path: Path) -> None:
    out = tmp_path / "img.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tarash.tarash_gateway.cli",
            "generate",
            "image",
            "a cat",
            "--model",
            "fal-ai/flux/dev",
            *fal_args(server, "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FAL_KEY": server.api_key},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes() == PNG
    assert "queued position=1" in result.stderr and "completed" in result.stderr
    assert server.counts["submit"] == 1


def test_fal_validation_error_exits_4_and_submits_nothing(
    server: FakeFalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["generate", "video", "a cat", "--model", "fal-ai/veo3", "--duration", "5", *fal_args(server)]
    )
    err = capsys.readouterr().err
    assert code == 4
    assert "duration_seconds" in err and "4, 6, 8" in err
    assert server.counts["submit"] == 0
