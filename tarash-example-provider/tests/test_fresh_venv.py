"""SLOW (~30 s): a fresh virtualenv with only tarash-core and this distribution installed.

Both are installed from this checkout with ``pip install`` (their dependencies come from the
package index), then a script in that venv generates a video and an image against the reference
server with no ``register_provider`` call: discovery goes through the installed entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import httpx
import pytest

from tarash_example_provider.server import ExampleServer

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from tarash.tarash_gateway import generate_image, generate_video, list_plugins
from tarash.tarash_gateway.models import (ImageGenerationConfig, ImageGenerationRequest,
                                          VideoGenerationConfig, VideoGenerationRequest)

url = sys.argv[1]
video = generate_video(VideoGenerationConfig(provider="example", model="example-video-1",
                                             base_url=url,
                                             poll_interval=0.05, timeout=30),
                       VideoGenerationRequest(prompt="a lighthouse", duration_seconds=4))
image = generate_image(ImageGenerationConfig(provider="example", model="example-image-1",
                                             base_url=url,
                                             poll_interval=0.05, timeout=30),
                       ImageGenerationRequest(prompt="a lighthouse", size="64x64"))
plugins = sorted((p.name, p.distribution, p.status) for p in list_plugins())
print(json.dumps({"video": video.video, "image": image.images[0], "plugins": plugins}))
"""


@pytest.mark.fresh_venv
def test_a_fresh_venv_generates_video_and_image_with_no_register_call(tmp_path: Path) -> None:
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    python = str(tmp_path / "venv" / "bin" / "python")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TARASH_", "PYTHON", "PIP_", "VIRTUAL_ENV"))
    }
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT / "tarash-core"),
            str(ROOT / "tarash-example-provider"),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    with ExampleServer(port=0, queue_seconds=0.05, work_seconds=0.2, image_work_seconds=0.1) as server:
        done = subprocess.run(
            [python, "-c", SCRIPT, server.url],
            capture_output=True,
            text=True,
            env={**env, "EXAMPLE_API_KEY": "fresh-venv-key-1", "TARASH_STRICT_PLUGINS": "1"},
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["plugins"] == [
            ["example", "tarash-example-provider", "loaded"],
            ["tarash.tarash_gateway.mock", None, "loaded"],
        ]
        assert httpx.get(answer["video"]).content[4:8] == b"ftyp"
        assert httpx.get(answer["image"]).content[:8] == b"\x89PNG\r\n\x1a\n"
