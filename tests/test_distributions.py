"""Cross-distribution tests: wheels built from this checkout, installed into a fresh virtualenv.

One virtualenv is built for the module: first with tarash-core alone (it must import and generate
offline without any provider SDK), then with a test-only plugin (used with no register call),
then with a plugin that fails on import (reported, others keep working; strict mode raises).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class Env:
    """A virtualenv with helpers to install wheels and run Python in it."""

    def __init__(self, path: Path) -> None:
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        self.python = str(path / "bin" / "python")
        self.bin = path / "bin"

    def pip(self, *args: str) -> None:
        subprocess.run(
            [self.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args], check=True
        )

    def run(self, code: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TARASH_")}
        environ.update(env)
        return subprocess.run(
            [self.python, "-c", code], capture_output=True, text=True, env=environ, timeout=120
        )


def build_wheel(project: Path, out: Path) -> Path:
    before = set(out.glob("*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(project),
        ],
        check=True,
    )
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "core": build_wheel(ROOT / "tarash-core", out),
        "testplugin": build_wheel(FIXTURES / "tarash-testplugin", out),
        "broken": build_wheel(FIXTURES / "tarash-brokenplugin", out),
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Env:
    environment = Env(tmp_path_factory.mktemp("venv"))
    environment.pip(str(wheels["core"]))
    return environment


GENERATE_MOCK = """
import json
from tarash.tarash_gateway import generate_video, list_providers
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
r = generate_video(VideoGenerationConfig(provider="mock", model="mock", provider_config={"delay": 0.001}),
                   VideoGenerationRequest(prompt="x", aspect_ratio="9:16"))
data = open(r.video.removeprefix("file://"), "rb").read(12)
print(json.dumps({"providers": [p.name for p in list_providers()], "ftyp": data[4:8].decode(),
                  "aspect": r.aspect_ratio}))
"""


def test_core_alone_imports_and_generates_offline(env: Env) -> None:
    result = env.run(GENERATE_MOCK)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"providers": ["mock"], "ftyp": "ftyp", "aspect": "9:16"}
    missing = env.run("import fal_client")
    assert missing.returncode == 1 and "No module named 'fal_client'" in missing.stderr
    requires = env.run(
        "import importlib.metadata as m, json, re; "
        "print(json.dumps(sorted(re.split('[ <>=;\\[]', r)[0] for r in m.requires('tarash-core') "
        "if 'extra ==' not in r)))"
    )
    assert json.loads(requires.stdout) == ["attrs", "cattrs", "httpx", "pluggy"]


USE_PLUGIN = """
import json
from tarash.tarash_gateway import generate_video, list_plugins
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
r = generate_video(VideoGenerationConfig(provider="testplugin", model="m"),
                   VideoGenerationRequest(prompt="cat"))
plugins = {p.name: [p.status, p.distribution, p.version, p.error] for p in list_plugins()
           if p.source == "entry-point"}
print(json.dumps({"video": r.video, "plugins": plugins}))
"""


def test_installed_plugin_works_without_register_call(env: Env, wheels: dict[str, Path]) -> None:
    env.pip(str(wheels["testplugin"]))
    result = env.run(USE_PLUGIN)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "video": "https://cdn.test/cat.mp4",
        "plugins": {"testplugin": ["loaded", "tarash-testplugin", "0.0.1", None]},
    }


def test_broken_plugin_is_listed_and_others_keep_working(env: Env, wheels: dict[str, Path]) -> None:
    env.pip(str(wheels["testplugin"]), str(wheels["broken"]))
    result = env.run(USE_PLUGIN)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "video": "https://cdn.test/cat.mp4",
        "plugins": {
            "broken": [
                "failed",
                "tarash-brokenplugin",
                "0.0.2",
                "import failed: ImportError: tarash-brokenplugin needs a module that is not installed",
            ],
            "testplugin": ["loaded", "tarash-testplugin", "0.0.1", None],
        },
    }
    assert result.stderr.count("is broken and was skipped") == 1

    strict = env.run(USE_PLUGIN, TARASH_STRICT_PLUGINS="1")
    assert strict.returncode == 1
    assert (
        "tarash.tarash_gateway.exceptions.PluginLoadError: Tarash plugin 'broken' failed to load: "
        "import failed: ImportError"
    ) in strict.stderr

    allowed = env.run(USE_PLUGIN, TARASH_PLUGINS="testplugin")
    assert json.loads(allowed.stdout)["plugins"]["broken"][0] == "disabled"
