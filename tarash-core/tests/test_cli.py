"""The ``tarash`` command, end to end: in-process through ``main()`` and as real subprocesses.

Generation runs against the built-in offline mock (``TARASH_MOCK_DELAY`` makes its simulated
queue fast), against providers registered at runtime with ``register_provider`` (to raise each
kind of error), and against a plugin discovered from a real ``*.dist-info`` folder (to read the
API key from its environment variable). Files come back as real MP4/PNG bytes.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import register_provider, unregister_provider
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.cli._parser import EXIT_CODE_TABLE
from tarash.tarash_gateway.exceptions import ContentModerationError, HTTPError
from tarash.tarash_gateway.mock import MEDIA_DIR, find_best_clip
from tarash.tarash_gateway.models import (
    ImageGenerationResponse,
    ImageType,
    MediaContent,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import hookimpl

MOCK_PROGRESS = [
    "queued",
    "queued position=1",
    "queued position=0",
    "processing 15%",
    "processing 40%",
    "processing 65%",
    "processing 90%",
    "completed 100%",
]
MOCK_PROGRESS_STDERR = "".join(f"{line}\n" for line in MOCK_PROGRESS)
#: The mock's bundled price is 0; a video is 4 s when the request sets no duration.
MOCK_STDERR = MOCK_PROGRESS_STDERR + "cost: 0 USD (4 second x 0, bundled-table)\n"
JSON_KEYS = {"request_id", "provider", "model", "output", "outputs", "url", "attempts", "is_mock", "cost"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MOCK_ONLY_PLUGINS = (
    "PLUGIN                      DISTRIBUTION  VERSION  STATUS  PROVIDERS  SOURCE\n"
    "tarash.tarash_gateway.mock  -             -        loaded  mock       builtin\n"
)
MOCK_PROVIDER_ROW = (
    "mock      image,video  tarash.tarash_gateway.mock  -            "
    "Offline mock provider: real local MP4/PNG files, simulated queue.\n"
)
MOCK_MODELS = (
    "MODEL       MODALITY  NAME        DESCRIPTION\n"
    "mock        video     Mock video  bundled test-pattern MP4 clips, offline\n"
    "    aspect_ratio: 16:9, 9:16, 1:1, 4:3, 21:9\n"
    "mock-image  image     Mock image  PNG test patterns, offline, up to 2048x2048\n"
)
UNKNOWN_PROVIDER = (
    "tarash: error: Unknown provider 'nope'. Installed providers: mock. Install the plugin that "
    "provides it, or call register_provider(). (provider=nope)\n"
)
CLIP = MEDIA_DIR / "16x9_180p_4s.mp4"

Run = tuple[int, str, str]


@pytest.fixture(autouse=True)
def fresh_host(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A plugin host that sees only the built-in mock (plus what a test puts in the folder)."""
    folder = tmp_path_factory.mktemp("plugins")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("TARASH_MOCK_DELAY", raising=False)
    monkeypatch.delenv("TARASH_DEBUG", raising=False)
    HOST.reset(search_path=[str(folder)])
    yield folder
    HOST.reset()


@pytest.fixture
def fast_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_MOCK_DELAY", "0.001")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class Recorder:
    """A runtime-registered provider that records what it was given and answers ``answer``."""

    def __init__(self, answer: Any = None, error: BaseException | None = None) -> None:
        self.answer = answer
        self.error = error
        self.calls: list[tuple[Any, Any]] = []

    def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        self.calls.append((config, request))
        if self.error is not None:
            raise self.error
        return self.answer

    generate_image = generate_video


@pytest.fixture
def runtime_provider() -> Iterator[Any]:
    names: list[str] = []

    def install(name: str, handler: Recorder) -> Recorder:
        register_provider(name, handler)
        names.append(name)
        return handler

    yield install
    for name in names:
        unregister_provider(name)


# ----------------------------------------------------------------------------------------------
# generate video / image with the mock
# ----------------------------------------------------------------------------------------------


def test_generate_video_saves_the_bundled_clip_with_plain_progress(
    run: Any,
    fast_mock: None,
    tmp_path: Path,
) -> None:
    out = tmp_path / "lighthouse.mp4"
    code, stdout, stderr = run(
        "generate", "video", "a lighthouse at dawn", "--provider", "mock", "--out", str(out)
    )
    assert (code, stdout, stderr) == (0, f"{out}\n", MOCK_STDERR)
    assert out.read_bytes()[4:8] == b"ftyp"
    assert out.read_bytes() == CLIP.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lighthouse.mp4"]


@pytest.mark.parametrize(("ratio", "duration"), [("9:16", "4"), ("16:9", "8"), ("1:1", "4")])
def test_aspect_ratio_and_duration_choose_the_clip(
    run: Any,
    fast_mock: None,
    tmp_path: Path,
    ratio: str,
    duration: str,
) -> None:
    out = tmp_path / "clip.mp4"
    code, _, _ = run(
        "generate",
        "video",
        "x",
        "--aspect-ratio",
        ratio,
        "--duration",
        duration,
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0
    expected = MEDIA_DIR / find_best_clip(ratio, int(duration))["file"]
    assert expected.name.startswith(ratio.replace(":", "x") + "_")
    assert out.read_bytes() == expected.read_bytes()


def test_json_output_is_one_object_and_the_default_name_is_the_request_id(
    run: Any,
    fast_mock: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run("generate", "video", "a lighthouse", "--json")
    assert (code, stderr) == (0, MOCK_PROGRESS_STDERR)  # --json: the cost is in the object
    assert stdout.endswith("\n")
    assert stdout.count("\n") == 1
    result = json.loads(stdout)
    assert set(result) == JSON_KEYS
    request_id = result["request_id"]
    assert re.fullmatch(r"mock_[0-9a-f]{32}", request_id)
    saved = tmp_path / f"{request_id}.mp4"
    assert result == {
        "request_id": request_id,
        "provider": "mock",
        "model": "mock",
        "output": str(saved),
        "outputs": [str(saved)],
        "url": CLIP.resolve().as_uri(),
        "attempts": 1,
        "is_mock": True,
        "cost": {
            "amount": "0",
            "currency": "USD",
            "unit": "second",
            "quantity": "4",
            "unit_price": "0",
            "source": "bundled-table",
            "kind": "estimate",
            "variant": None,
        },
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]
    assert saved.read_bytes()[4:8] == b"ftyp"


def test_generate_several_images(run: Any, fast_mock: None, tmp_path: Path) -> None:
    out = tmp_path / "fox.png"
    code, stdout, stderr = run(
        "generate", "image", "a red fox", "--n", "2", "--size", "64x32", "--out", str(out)
    )
    first, second = tmp_path / "fox_1.png", tmp_path / "fox_2.png"
    assert (code, stdout, stderr) == (
        0,
        f"{first}\n{second}\n",
        MOCK_PROGRESS_STDERR + "cost: 0 USD (2 image x 0, bundled-table)\n",
    )
    assert png_size(first) == png_size(second) == (64, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fox_1.png", "fox_2.png"]


def test_generate_one_image_into_a_directory_as_json(
    run: Any,
    fast_mock: None,
    tmp_path: Path,
) -> None:
    code, stdout, _ = run(
        "generate", "image", "a fox", "--aspect-ratio", "1:1", "--out", str(tmp_path), "--json", "--quiet"
    )
    result = json.loads(stdout)
    saved = tmp_path / f"{result['request_id']}.png"
    assert code == 0
    assert (result["model"], result["output"], result["outputs"]) == ("mock-image", str(saved), [str(saved)])
    assert result["url"].startswith("file://")
    assert result["url"].endswith("_0.png")
    assert png_size(saved) == (256, 256)


def test_quiet_prints_no_progress(run: Any, fast_mock: None, tmp_path: Path) -> None:
    code, stdout, stderr = run("generate", "video", "x", "-q", "--out", str(tmp_path / "v.mp4"))
    assert (code, stdout, stderr) == (0, f"{tmp_path / 'v.mp4'}\n", "")


# ----------------------------------------------------------------------------------------------
# What the options become
# ----------------------------------------------------------------------------------------------


def test_options_become_the_request_and_params_land_in_extra_params(
    run: Any,
    runtime_provider: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    frame = tmp_path / "frame.png"
    frame.write_bytes(PNG_SIGNATURE + b"frame")
    answer = VideoGenerationResponse(
        request_id="../../escape", video=MediaContent(content=CLIP.read_bytes(), content_type="video/mp4")
    )
    recorder = runtime_provider("recorder", Recorder(answer))
    code, stdout, stderr = run(
        "generate",
        "video",
        "a cat",
        "--provider",
        "recorder",
        "--model",
        "m-1",
        "--aspect-ratio",
        "1:1",
        "--duration",
        "4",
        "--resolution",
        "720p",
        "--seed",
        "7",
        "--negative-prompt",
        "blur",
        "--image",
        str(frame),
        "--image",
        "https://cdn.test/a.png:last_frame",
        "--param",
        "cfg=0.5",
        "--param",
        'tags=["a", "b"]',
        "--param",
        "name=plain text",
        "--param",
        "flag=true",
        "--api-key",
        "flag-key-0123456789",
        "--timeout",
        "30",
        "--json",
    )
    assert (code, stderr) == (0, "")
    [(config, request)] = recorder.calls
    assert (config.provider, config.model, config.api_key, config.timeout) == (
        "recorder",
        "m-1",
        "flag-key-0123456789",
        30.0,
    )
    assert (
        request.prompt,
        request.aspect_ratio,
        request.duration_seconds,
        request.resolution,
        request.seed,
        request.negative_prompt,
    ) == ("a cat", "1:1", 4, "720p", 7, "blur")
    assert request.extra_params == {"cfg": 0.5, "tags": ["a", "b"], "name": "plain text", "flag": True}
    assert request.image_list == [
        ImageType(
            image=MediaContent(content=PNG_SIGNATURE + b"frame", content_type="image/png"), type="first_frame"
        ),
        ImageType(image="https://cdn.test/a.png", type="last_frame"),
    ]
    result = json.loads(stdout)
    assert result["output"] == str(tmp_path / "escape.mp4")
    assert result["url"] is None
    assert result["is_mock"] is False
    assert (tmp_path / "escape.mp4").read_bytes() == CLIP.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["escape.mp4", "frame.png"]


def test_image_options_and_the_reference_role_default(
    run: Any,
    runtime_provider: Any,
    tmp_path: Path,
) -> None:
    png = PNG_SIGNATURE + b"pixels"
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    recorder = runtime_provider(
        "painter", Recorder(ImageGenerationResponse(request_id="p1", images=[data_uri]))
    )
    code, stdout, stderr = run(
        "generate",
        "image",
        "a fox",
        "--provider",
        "painter",
        "--model",
        "m",
        "--image",
        data_uri,
        "--image",
        f"{data_uri}:style",
        "--size",
        "64x64",
        "--n",
        "1",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert (code, stderr) == (0, "")
    [(_, request)] = recorder.calls
    assert (request.size, request.n) == ("64x64", 1)
    assert request.image_list == [
        ImageType(image=data_uri, type="reference"),
        ImageType(image=data_uri, type="style"),
    ]
    result = json.loads(stdout)
    assert (result["output"], result["url"]) == (str(tmp_path / "p1.png"), None)
    assert (tmp_path / "p1.png").read_bytes() == png


class QuietFiles(SimpleHTTPRequestHandler):
    """Serves a directory without logging each request."""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def test_http_results_are_downloaded(
    run: Any,
    runtime_provider: Any,
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(CLIP, served / "result.mp4")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/result.mp4"
        runtime_provider("remote", Recorder(VideoGenerationResponse(request_id="r-77", video=url)))
        out = tmp_path / "out"
        out.mkdir()
        code, stdout, stderr = run(
            "generate", "video", "x", "--provider", "remote", "--model", "m", "--out", str(out), "--json"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (code, stderr) == (0, "")
    assert json.loads(stdout)["url"] == url
    assert (out / "r-77.mp4").read_bytes() == CLIP.read_bytes()


KEYED_PLUGIN = """
from tarash.tarash_gateway.models import MediaContent, VideoGenerationResponse
from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

SEEN = []

@hookimpl
def register_providers():
    return [ProviderSpec(name="keyed", modalities={"video"}, api_key_env="CLI_TEST_API_KEY",
                         description="needs a key")]

@hookimpl
def generate_video(config, request, context):
    SEEN.append(context.api_key)
    return VideoGenerationResponse(request_id="k1", video=MediaContent(content=b"....ftyp",
                                                                       content_type="video/mp4"))
"""


@pytest.fixture
def keyed_plugin(fresh_host: Path) -> Iterator[list[str | None]]:
    """A plugin discovered from a real dist-info folder; yields the keys its hook saw."""
    info = fresh_host / "tarash_keyed-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tarash-keyed\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tarash]\nkeyed = cli_keyed_plugin\n")
    (fresh_host / "cli_keyed_plugin.py").write_text(KEYED_PLUGIN)
    importlib.invalidate_caches()
    HOST.reset(search_path=[str(fresh_host)])
    yield importlib.import_module("cli_keyed_plugin").SEEN
    sys.modules.pop("cli_keyed_plugin", None)


def test_api_key_comes_from_the_providers_env_var_unless_given(
    run: Any,
    keyed_plugin: list[str | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLI_TEST_API_KEY", "env-key-0123456789")
    base = ("generate", "video", "x", "--provider", "keyed", "--model", "m", "-q")
    assert run(*base, "--out", str(tmp_path / "a.mp4"))[0] == 0
    assert run(*base, "--out", str(tmp_path / "b.mp4"), "--api-key", "flag-key-9876543210")[0] == 0
    assert keyed_plugin == ["env-key-0123456789", "flag-key-9876543210"]
    assert (tmp_path / "a.mp4").read_bytes() == b"....ftyp"


def test_a_missing_key_names_the_variable_and_the_option(
    run: Any, keyed_plugin: list[str | None], tmp_path: Path
) -> None:
    code, out, err = run("generate", "video", "x", "--provider", "keyed", "--model", "m", "-q")
    assert (code, out) == (4, "")
    assert err == (
        "tarash: error: No API key for provider 'keyed': set CLI_TEST_API_KEY or pass api_key=... "
        "in the config (--api-key on the command line) (provider=keyed)\n"
    )
    assert keyed_plugin == []


def test_model_is_required_for_other_providers(run: Any, keyed_plugin: list[str | None]) -> None:
    assert run("generate", "video", "x", "--provider", "keyed") == (
        2,
        "",
        "tarash: error: --model is required for provider 'keyed' (see `tarash models keyed`)\n",
    )
    assert keyed_plugin == []


def test_providers_and_models_of_a_plugin(run: Any, keyed_plugin: list[str | None]) -> None:
    assert run("providers") == (
        0,
        (
            "PROVIDER  MODALITIES   PLUGIN                      API KEY ENV       DESCRIPTION\n"
            "keyed     video        keyed                       CLI_TEST_API_KEY  needs a key\n"
            "mock      image,video  tarash.tarash_gateway.mock  -                 "
            "Offline mock provider: real local MP4/PNG files, simulated queue.\n"
        ),
        "",
    )
    assert run("models", "keyed") == (
        0,
        "Provider 'keyed' declares no model families; pass any model id with --model.\n",
        "",
    )


# ----------------------------------------------------------------------------------------------
# Errors and exit codes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "last_line"),
    [
        (
            ["generate", "video", "x", "--seed", "abc"],
            "tarash generate video: error: argument --seed: invalid int value: 'abc'",
        ),
        (
            ["generate", "video", "x", "--param", "novalue"],
            "tarash generate video: error: argument --param: expected key=value, got 'novalue'",
        ),
        (["generate", "video"], "tarash generate video: error: the following arguments are required: PROMPT"),
        (
            ["generate", "image", "x", "--duration", "4"],
            "tarash: error: unrecognized arguments: --duration 4",
        ),
        ([], "tarash: error: the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2(run: Any, argv: list[str], last_line: str) -> None:
    code, stdout, stderr = run(*argv)
    assert (code, stdout) == (2, "")
    assert stderr.startswith("usage: tarash")
    assert stderr.splitlines()[-1] == last_line


def test_unknown_command_exits_2_listing_the_commands(run: Any) -> None:
    code, _, stderr = run("frobnicate")
    assert code == 2
    assert "error: argument COMMAND: invalid choice: 'frobnicate' (choose from " in stderr


def test_unknown_provider_exits_3_listing_the_installed_ones(run: Any) -> None:
    assert run("generate", "video", "x", "--provider", "nope") == (3, "", UNKNOWN_PROVIDER)
    assert run("models", "nope") == (3, "", UNKNOWN_PROVIDER)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("mokc", "Unknown provider 'mokc'. Did you mean 'mock'? Installed providers: mock."),
        (
            "fall",
            "Unknown provider 'fall'. Did you mean 'fal'? Installed providers: mock. Provider 'fal' comes "
            "with the tarash-fal plugin, which is not installed (`pip install tarash-fal`, or "
            "`pip install ./tarash-fal` from a checkout).",
        ),
        (
            "fal",
            "Unknown provider 'fal'. Installed providers: mock. Provider 'fal' comes with the tarash-fal "
            "plugin, which is not installed (`pip install tarash-fal`, or `pip install ./tarash-fal` "
            "from a checkout).",
        ),
    ],
)
def test_a_mistyped_provider_suggests_a_real_one_never_a_made_up_package(
    run: Any, typed: str, message: str
) -> None:
    assert run("generate", "video", "x", "--provider", typed) == (
        3,
        "",
        f"tarash: error: {message} (provider={typed})\n",
    )


def test_a_typo_of_an_installed_provider_suggests_it() -> None:
    from tarash.tarash_gateway.exceptions import ProviderNotFoundError

    assert ProviderNotFoundError("fall", ["fal", "mock"]).message == (
        "Unknown provider 'fall'. Did you mean 'fal'? Installed providers: fal, mock."
    )
    assert ProviderNotFoundError("Example", ["mock"]).message == (
        "Unknown provider 'Example'. Did you mean 'example'? Installed providers: mock. Provider "
        "'example' comes with the tarash-example-provider plugin, which is not installed (`pip install "
        "tarash-example-provider`, or `pip install ./tarash-example-provider` from a checkout)."
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["generate", "video", "x", "--aspect-ratio", "banana"],
            "invalid --aspect-ratio: VideoGenerationRequest.aspect_ratio: expected an aspect ratio like "
            "'16:9' or 'auto', got 'banana'",
        ),
        (
            ["generate", "video", "x", "--resolution", "huge"],
            "invalid --resolution: VideoGenerationRequest.resolution: expected a resolution like '720p', "
            "'1080p' or '4k', got 'huge'",
        ),
        (
            ["generate", "image", "x", "--n", "0"],
            "invalid --n: ImageGenerationRequest.n: expected an integer >= 1, got 0",
        ),
        (
            ["generate", "video", "x", "--timeout", "0"],
            "invalid --timeout: VideoGenerationConfig.timeout: expected a number > 0, got 0.0",
        ),
        (
            ["generate", "video", "x", "--image", "missing.png"],
            "invalid --image: no such file 'missing.png' (give a local file, an http(s) URL or a data: URI)",
        ),
        (
            ["generate", "video", "x", "--image", "fox_1.png:banana"],
            "invalid --image: unknown role 'banana' in 'fox_1.png:banana' (roles: reference, first_frame, "
            "last_frame, asset, style)",
        ),
        (
            ["generate", "video", "x", "--poll-interval", "-1"],
            "invalid --poll-interval: VideoGenerationConfig.poll_interval: expected a number >= 0, got -1.0",
        ),
        (
            ["generate", "video", "x", "--provider-config", "delay=abc"],
            "invalid --provider-config: delay: expected a number of seconds from 0 to 3600, got 'abc' "
            "(provider=mock, model=mock)",
        ),
        *(
            (
                ["generate", "video", "x", "--aspect-ratio", ratio],
                f"invalid --aspect-ratio: aspect_ratio={ratio!r} is not allowed; allowed values: 16:9, 9:16, "
                "1:1, 4:3, 21:9 (provider=mock, model=mock)",
            )
            for ratio in ("0:0", "7:3")
        ),
        (
            ["generate", "image", "x", "--aspect-ratio", "0:1"],
            "invalid --aspect-ratio: aspect_ratio='0:1': expected WIDTH:HEIGHT with both above 0, or 'auto' "
            "(provider=mock, model=mock-image)",
        ),
        *(
            (
                ["generate", "image", "x", "--size", size],
                f"invalid --size: size={size!r}: expected WIDTHxHEIGHT, each from 1 to 2048 "
                "(provider=mock, model=mock-image)",
            )
            for size in ("banana", "0x0", "64x4096")
        ),
    ],
)
def test_validation_errors_exit_4_naming_the_option(
    run: Any,
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(*argv) == (4, "", f"tarash: error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_bad_mock_delay_exits_4(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_MOCK_DELAY", "soon")
    assert run("generate", "video", "x") == (
        4,
        "",
        "tarash: error: invalid TARASH_MOCK_DELAY: expected a number of seconds, got 'soon'\n",
    )


def test_content_moderation_exits_5(run: Any, runtime_provider: Any) -> None:
    runtime_provider("strict", Recorder(error=ContentModerationError("prompt refused by policy")))
    assert run("generate", "video", "x", "--provider", "strict", "--model", "m") == (
        5,
        "",
        "tarash: error: prompt refused by policy (provider=strict, model=m)\n",
    )


def test_timeout_exits_6_against_the_slow_mock(
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run("generate", "video", "x", "--timeout", "0.05")
    assert (code, stdout) == (6, "")
    *progress, last = stderr.splitlines()
    assert progress == MOCK_PROGRESS[: len(progress)]
    assert re.fullmatch(
        r"tarash: error: Generation did not finish within 0\.05s \(.+\) "
        r"\(provider=mock, model=mock\)",
        last,
    )
    assert list(tmp_path.iterdir()) == []


def test_provider_http_failure_exits_7_without_leaking_the_key(
    run: Any,
    runtime_provider: Any,
) -> None:
    key = "sk-live-0123456789abcdef"
    runtime_provider(
        "flaky", Recorder(error=HTTPError(f"HTTP 500: upstream rejected key {key}", status_code=500))
    )
    assert run("generate", "video", "x", "--provider", "flaky", "--model", "m", "--api-key", key) == (
        7,
        "",
        "tarash: error: HTTP 500: upstream rejected key ***REDACTED*** (provider=flaky, model=m)\n",
    )


def test_a_mistyped_key_in_an_argument_error_is_redacted(run: Any) -> None:
    key = "sk-typo-0123456789abcdef"
    code, _, stderr = run("generate", "video", "x", f"--api-key={key}", "--aspect", key)
    assert code == 2
    assert key not in stderr
    assert stderr.splitlines()[-1] == ("tarash: error: unrecognized arguments: --aspect ***REDACTED***")


def test_unwritable_output_exits_8_before_generating(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.mp4"
    assert run("generate", "video", "x", "--out", str(target)) == (
        8,
        "",
        f"tarash: error: cannot write {target}: directory {target.parent} does not exist\n",
    )


@pytest.mark.parametrize("missing", ["nodir/", "nodir/sub/"])
def test_out_with_a_trailing_slash_must_be_an_existing_directory(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("generate", "video", "x", "--out", missing) == (
        8,
        "",
        f"tarash: error: cannot write to {missing}: no such directory\n",
    )
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "clips").mkdir()
    code, stdout, _ = run("generate", "video", "x", "--out", "clips/")
    assert (code, Path(stdout.strip()).parent) == (0, tmp_path / "clips")


def test_refused_result_url_exits_8(run: Any, runtime_provider: Any, tmp_path: Path) -> None:
    runtime_provider("sneaky", Recorder(VideoGenerationResponse(request_id="s1", video="file:///etc/passwd")))
    assert run("generate", "video", "x", "--provider", "sneaky", "--model", "m", "--out", str(tmp_path)) == (
        8,
        "",
        "tarash: error: could not save the video: download refused: file:///etc/passwd is "
        "outside the directories Tarash writes to (pass allowed_file_roots to allow it)\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_unexpected_errors_exit_1_with_a_traceback_only_on_request(
    run: Any,
    runtime_provider: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tarash.tarash_gateway.cli import _generate

    def broken(*args: Any) -> Any:
        raise RuntimeError("bug in the CLI")

    monkeypatch.setattr(_generate, "save_outputs", broken)
    runtime_provider("fine", Recorder(VideoGenerationResponse(request_id="f1", video=CLIP.as_uri())))
    argv = ("generate", "video", "x", "--provider", "fine", "--model", "m")
    assert run(*argv) == (
        1,
        "",
        "tarash: error: unexpected RuntimeError: bug in the CLI (set TARASH_DEBUG=1 for a traceback)\n",
    )
    monkeypatch.setenv("TARASH_DEBUG", "1")
    code, _, stderr = run(*argv)
    assert code == 1
    assert "Traceback (most recent call last):" in stderr
    assert stderr.endswith("RuntimeError: bug in the CLI\n")


# ----------------------------------------------------------------------------------------------
# plugins / providers / models
# ----------------------------------------------------------------------------------------------


def test_plugins_lists_the_builtin_mock(run: Any) -> None:
    assert run("plugins") == (0, MOCK_ONLY_PLUGINS, "")
    assert json.loads(run("plugins", "--json")[1]) == [
        {
            "name": "tarash.tarash_gateway.mock",
            "distribution": None,
            "version": None,
            "status": "loaded",
            "providers": ["mock"],
            "source": "builtin",
            "error": None,
        }
    ]


def test_plugins_shows_why_a_broken_plugin_failed(
    run: Any,
    fresh_host: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TARASH_STRICT_PLUGINS", raising=False)
    info = fresh_host / "tarash_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tarash-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tarash]\nbroken = cli_broken_plugin\n")
    (fresh_host / "cli_broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    importlib.invalidate_caches()
    HOST.reset(search_path=[str(fresh_host)])
    try:
        code, stdout, _ = run("plugins")
        listed = json.loads(run("plugins", "--json")[1])
    finally:
        sys.modules.pop("cli_broken_plugin", None)
    assert (code, stdout) == (
        0,
        (
            "PLUGIN                      DISTRIBUTION   VERSION  STATUS  PROVIDERS  SOURCE\n"
            "tarash.tarash_gateway.mock  -              -        loaded  mock       builtin\n"
            "broken                      tarash-broken  0.1      failed  -          entry-point\n"
            "    error: import failed: RuntimeError: boom at import\n"
        ),
    )
    assert listed[1] == {
        "name": "broken",
        "distribution": "tarash-broken",
        "version": "0.1",
        "status": "failed",
        "providers": [],
        "source": "entry-point",
        "error": "import failed: RuntimeError: boom at import",
    }


def test_providers(run: Any) -> None:
    header = "PROVIDER  MODALITIES   PLUGIN                      API KEY ENV  DESCRIPTION\n"
    assert run("providers") == (0, header + MOCK_PROVIDER_ROW, "")
    assert json.loads(run("providers", "--json")[1]) == [
        {
            "name": "mock",
            "modalities": ["image", "video"],
            "description": "Offline mock provider: real local MP4/PNG files, simulated queue.",
            "api_key_env": None,
            "capabilities": {
                "cancel": True,
                "queue_position": True,
                "progress_percent": True,
                "logs": True,
                "webhooks": False,
                "idempotency_key": True,
                "resume": True,
            },
            "plugin": "tarash.tarash_gateway.mock",
            "distribution": None,
            "version": None,
            "source": "builtin",
            "lifecycle": True,
        }
    ]


def test_models(run: Any) -> None:
    assert run("models", "mock") == (0, MOCK_MODELS, "")
    assert json.loads(run("models", "mock", "--json")[1]) == {
        "provider": "mock",
        "models": [
            {
                "prefix": "mock",
                "modality": "video",
                "name": "Mock video",
                "description": "bundled test-pattern MP4 clips, offline",
                "allowed": {"aspect_ratio": ["16:9", "9:16", "1:1", "4:3", "21:9"]},
            },
            {
                "prefix": "mock-image",
                "modality": "image",
                "name": "Mock image",
                "description": "PNG test patterns, offline, up to 2048x2048",
                "allowed": {},
            },
        ],
    }


# ----------------------------------------------------------------------------------------------
# Commands added by plugins
# ----------------------------------------------------------------------------------------------


class PingPlugin:
    """Adds ``tarash cli-test-ping [--name NAME]``."""

    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        parser = subparsers.add_parser("cli-test-ping", help="answer pong")
        parser.add_argument("--name", default="world")
        parser.set_defaults(func=self.ping)

    @staticmethod
    def ping(args: Any) -> int:
        print(f"pong {args.name}")
        return 3


class BrokenCommandsPlugin:
    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        raise RuntimeError("cannot add commands")


def test_a_plugin_command_runs_and_a_broken_one_is_reported(run: Any) -> None:
    HOST.pm.register(BrokenCommandsPlugin(), name="cli-test-broken")
    HOST.pm.register(PingPlugin(), name="cli-test-ping")
    assert run("cli-test-ping", "--name", "tarash") == (
        3,
        "pong tarash\n",
        (
            "tarash: warning: plugin 'cli-test-broken' failed to add its commands: "
            "RuntimeError: cannot add commands\n"
        ),
    )


class SloppyPlugin:
    """Commands that forget ``func``, return None, or exit with a message."""

    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        subparsers.add_parser("cli-test-nofunc")
        subparsers.add_parser("cli-test-none").set_defaults(func=lambda args: None)
        subparsers.add_parser("cli-test-exit").set_defaults(func=self.leave)

    @staticmethod
    def leave(args: Any) -> int:
        raise SystemExit("leaving early")


def test_plugin_commands_that_bend_the_rules(run: Any) -> None:
    HOST.pm.register(SloppyPlugin(), name="cli-test-sloppy")
    assert run("cli-test-nofunc") == (
        1,
        "",
        (
            "tarash: error: command 'cli-test-nofunc' does not say what to run "
            "(its parser needs set_defaults(func=...))\n"
        ),
    )
    assert run("cli-test-none") == (0, "", "")
    assert run("cli-test-exit") == (1, "", "leaving early\n")


def test_the_jobs_group_is_added_when_its_module_exists(
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = types.ModuleType("tarash.tarash_gateway.cli._jobs")

    def add_parser(subparsers: Any) -> None:
        group = subparsers.add_parser("jobs", help="durable jobs")
        group.add_argument("action")
        group.set_defaults(func=lambda args: print(f"jobs {args.action}") or 0)

    jobs.add_parser = add_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, jobs.__name__, jobs)
    HOST.pm.register(BrokenCommandsPlugin(), name="cli-test-broken")
    assert run("jobs", "list") == (0, "jobs list\n", "")
    assert "    jobs         durable jobs\n" in run("--help")[1]


def test_builtin_commands_do_not_load_plugin_commands(run: Any) -> None:
    HOST.pm.register(BrokenCommandsPlugin(), name="cli-test-broken")
    assert run("models", "mock") == (0, MOCK_MODELS, "")


# ----------------------------------------------------------------------------------------------
# Real processes: python -m, the installed script, --help, Ctrl-C, a terminal
# ----------------------------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """This environment (its TARASH_HOME included) with only the built-in plugin and ``extra``."""
    dropped = {"TARASH_MOCK_DELAY", "TARASH_PLUGINS", "TARASH_STRICT_PLUGINS", "TARASH_DEBUG"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(TARASH_DISABLE_PLUGINS="1", **extra)
    return env


def tarash_script() -> str:
    found = shutil.which("tarash", path=str(Path(sys.executable).parent))
    assert found is not None, "the tarash console script is not installed next to python"
    return found


def test_python_dash_m_generates_a_video(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tarash.tarash_gateway.cli",
            "generate",
            "video",
            "a lighthouse",
            "--out",
            "lighthouse.mp4",
            "--json",
        ],
        cwd=tmp_path,
        env=child_env(TARASH_MOCK_DELAY="0.001"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, MOCK_PROGRESS_STDERR)
    result = json.loads(done.stdout)
    assert set(result) == JSON_KEYS
    assert result["output"] == str(tmp_path / "lighthouse.mp4")
    assert (tmp_path / "lighthouse.mp4").read_bytes()[4:8] == b"ftyp"


def test_installed_script_generates_an_image(tmp_path: Path) -> None:
    done = subprocess.run(
        [tarash_script(), "generate", "image", "a fox", "--out", "fox.png", "--quiet"],
        cwd=tmp_path,
        env=child_env(TARASH_MOCK_DELAY="0.001"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{tmp_path / 'fox.png'}\n", "")
    assert png_size(tmp_path / "fox.png") == (256, 144)


def test_installed_script_help_documents_the_exit_codes() -> None:
    done = subprocess.run(
        [tarash_script(), "--help"], env=child_env(COLUMNS="100"), capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: tarash [-h] [--version] COMMAND ...\n")
    assert EXIT_CODE_TABLE in done.stdout
    assert "    generate     generate a video or an image\n" in done.stdout


def test_help_imports_no_engine_plugins_or_httpx() -> None:
    script = textwrap.dedent("""
        import contextlib, io, sys
        from tarash.tarash_gateway.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["--help"], ["generate", "video", "--help"]):
                assert main(argv) == 0
        heavy = ["httpx", "pluggy", "attrs", "tarash.tarash_gateway._engine",
                 "tarash.tarash_gateway._plugins", "tarash.tarash_gateway.models",
                 "tarash.tarash_gateway.cli._generate"]
        print(sorted(name for name in heavy if name in sys.modules))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


def test_help_lists_the_image_roles_the_models_accept() -> None:
    from tarash.tarash_gateway._validators import IMAGE_ROLES
    from tarash.tarash_gateway.cli._parser import IMAGE_ROLES_HELP

    assert ", ".join(IMAGE_ROLES) == IMAGE_ROLES_HELP


def test_version(run: Any) -> None:
    from tarash.tarash_gateway import __version__

    assert run("--version") == (0, f"tarash {__version__}\n", "")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_exits_130_and_leaves_no_file(
    tmp_path: Path, sigint_raises: None, reaped: list[subprocess.Popen[str]]
) -> None:
    child = subprocess.Popen(
        [tarash_script(), "generate", "video", "x"],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reaped.append(child)
    assert child.stderr is not None
    assert child.stderr.readline() == "queued\n"
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert (child.returncode, stdout) == (130, "")
    assert stderr.splitlines()[-1] == "tarash: interrupted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_gets_one_redrawn_line(tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [tarash_script(), "generate", "video", "x", "--out", "v.mp4"],
        cwd=tmp_path,
        env=child_env(TARASH_MOCK_DELAY="0.05", TERM="xterm"),
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = child.communicate(timeout=60)
    reader.join(timeout=60)
    os.close(controller)
    screen = b"".join(chunks)
    assert (child.returncode, stdout) == (0, f"{tmp_path / 'v.mp4'}\n".encode())
    cost = "cost: 0 USD (4 second x 0, bundled-table)\r\n"
    assert screen.decode().endswith(cost)
    text = screen.decode().removesuffix(cost)
    assert text.count("\n") == 1
    assert text.endswith("\r\n")
    assert text.startswith("\r\x1b[Ksubmitting [--------------------]    -")
    assert "\r\x1b[Kqueued (position 1) [--------------------]   0%" in text
    assert "\r\x1b[Kprocessing [########------------]  40%" in text
    assert re.search(r"\r\x1b\[Kcompleted \[#{20}\] 100% +\d+\.\ds\r\n$", text)
