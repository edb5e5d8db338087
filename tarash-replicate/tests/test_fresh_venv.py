"""SLOW: a fresh virtualenv with only tarash-core and tarash-replicate installed from this checkout
generates a video and an image against the fake Replicate API with no ``register_provider`` call
(discovery goes through the installed entry point; the token comes from ``REPLICATE_API_TOKEN``)."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tarash_replicate.testing import FakeReplicateServer

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from tarash.tarash_gateway import generate_image, generate_video, list_plugins
from tarash.tarash_gateway.models import (ImageGenerationConfig, ImageGenerationRequest,
                                          VideoGenerationConfig, VideoGenerationRequest)

url = sys.argv[1]
video = generate_video(VideoGenerationConfig(provider="replicate", model="google/veo-3", base_url=url,
                                             poll_interval=0.01, timeout=30),
                       VideoGenerationRequest(prompt="a lighthouse", duration_seconds=4))
image = generate_image(ImageGenerationConfig(provider="replicate", model="black-forest-labs/flux-schnell",
                                             base_url=url, timeout=30),
                       ImageGenerationRequest(prompt="a lighthouse"))
plugins = sorted((p.name, p.distribution, p.status) for p in list_plugins())
print(json.dumps({"video": video.video, "image": image.images, "plugins": plugins}))
"""


@pytest.mark.fresh_venv
def test_a_fresh_venv_generates_with_no_register_call(tmp_path: Path) -> None:
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    python = str(tmp_path / "venv" / "bin" / "python")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TARASH_", "PYTHON", "PIP_", "VIRTUAL_ENV", "REPLICATE_"))
    }
    subprocess.run(
        [
            *(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *(str(ROOT / "tarash-core"), str(ROOT / "tarash-replicate")),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    with FakeReplicateServer(api_token="r8_fresh_venv") as fake:
        done = subprocess.run(
            [python, "-c", SCRIPT, fake.url],
            capture_output=True,
            text=True,
            env={**env, "REPLICATE_API_TOKEN": "r8_fresh_venv", "TARASH_STRICT_PLUGINS": "1"},
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        created = [s["id"] for s in fake.submissions]
    assert answer["plugins"] == [
        ["replicate", "tarash-replicate", "loaded"],
        ["tarash.tarash_gateway.mock", None, "loaded"],
    ]
    assert answer["video"] == f"https://replicate.delivery/xezq/{created[0]}/output.mp4"
    assert answer["image"] == [f"https://replicate.delivery/xezq/{created[1]}/out-0.webp"]
