"""The example provider through the public Tarash API, against the reference server."""

from __future__ import annotations

import asyncio
import base64
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

import tarash_example_provider
from tarash.tarash_gateway import (
    generate_image,
    generate_image_async,
    generate_video,
    generate_video_async,
    get_provider,
)
from tarash.tarash_gateway.exceptions import (
    HTTPError,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_example_provider.server import ExampleServer

KEY = "example-test-key-0001"
Stats = Callable[[], dict[str, Any]]


def video_config(server: ExampleServer, fault: str = "", timeout: float = 20) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="example",
        model="example-video-1",
        api_key=KEY,
        base_url=server.url + fault,
        poll_interval=0.05,
        timeout=timeout,
    )


def image_config(server: ExampleServer, fault: str = "") -> ImageGenerationConfig:
    return ImageGenerationConfig(
        provider="example",
        model="example-image-1",
        api_key=KEY,
        base_url=server.url + fault,
        poll_interval=0.05,
        timeout=20,
    )


def run(api: str, sync: Any, async_: Any, config: Any, request: Any) -> Any:
    """Generate through the sync or the async API."""
    return sync(config, request) if api == "sync" else asyncio.run(async_(config, request))


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {
        k: after["requests"].get(k, 0) - before["requests"].get(k, 0)
        for k in ("submit", "status", "result", "cancel")
    }


def test_the_installed_provider_is_found_with_its_spec() -> None:
    info = get_provider("example")
    assert (info.source, info.plugin, info.distribution) == (
        "entry-point",
        "example",
        "tarash-example-provider",
    )
    assert info.lifecycle is True
    assert info.spec.modalities == {"video", "image"}
    assert info.spec.api_key_env == "EXAMPLE_API_KEY"
    assert [m.prefix for m in info.spec.models] == ["example-video-1", "example-image-1"]


def test_registering_imports_no_httpx_and_nothing_outside_core() -> None:
    code = (
        "import sys; before = set(sys.modules); import tarash_example_provider._plugin as p; "
        "p.register_providers(); new = {m.partition('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'tarash', 'tarash_example_provider', "
        "'attr', 'attrs', 'pluggy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_template_is_at_most_200_lines() -> None:
    """The plugin code (everything under ``src/`` but the reference server) stays a short read."""
    package = Path(tarash_example_provider.__file__).parent
    lines = {path.name: len(path.read_text().splitlines()) for path in package.glob("*.py")}
    del lines["server.py"]
    assert sorted(lines) == ["__init__.py", "_fields.py", "_plugin.py"]
    assert sum(lines.values()) <= 200, lines


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_video_request_maps_onto_the_api_fields(
    api: str, example_server: ExampleServer, server_stats: Stats
) -> None:
    request = VideoGenerationRequest(
        prompt="a lighthouse",
        negative_prompt="fog",
        duration_seconds=8,
        aspect_ratio="9:16",
        resolution="240p",
        seed=7,
        generate_audio=False,
        image_list=[{"image": "https://cdn.test/first.png", "type": "first_frame"}],
    )
    before = server_stats()
    response = run(api, generate_video, generate_video_async, video_config(example_server), request)
    after = server_stats()
    assert after["last_submit"] == {
        "model": "example-video-1",
        "input": {
            "prompt": "a lighthouse",
            "negative_prompt": "fog",
            "duration": 8,
            "aspect_ratio": "9:16",
            "resolution": "240p",
            "seed": 7,
            "audio": False,
            "image_url": "https://cdn.test/first.png",
        },
    }
    assert response.request_id.startswith("job_")
    assert response.video == f"{example_server.url}/v1/files/{response.request_id}.mp4"
    assert (
        response.content_type,
        response.resolution,
        response.aspect_ratio,
        response.duration,
    ) == ("video/mp4", "180x320", "9:16", 4.0)
    assert (response.provider, response.model) == ("example", "example-video-1")
    counts = delta(before, after)
    assert (counts["submit"], counts["result"], counts["cancel"]) == (1, 1, 0)
    assert counts["status"] >= 3
    assert httpx.get(str(response.video)).content[4:8] == b"ftyp"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_an_image_request_maps_size_and_count(
    api: str, example_server: ExampleServer, server_stats: Stats
) -> None:
    request = ImageGenerationRequest(prompt="a lighthouse", n=2, aspect_ratio="16:9", seed=11)
    response = run(api, generate_image, generate_image_async, image_config(example_server), request)
    assert server_stats()["last_submit"] == {
        "model": "example-image-1",
        "input": {
            "prompt": "a lighthouse",
            "num_images": 2,
            "aspect_ratio": "16:9",
            "seed": 11,
            "width": 512,
            "height": 288,
        },
    }
    assert (len(response.images), response.content_type) == (2, "image/png")
    png = httpx.get(response.images[0]).content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (512, 288)


def test_explicit_image_size_wins_over_aspect_ratio(
    example_server: ExampleServer, server_stats: Stats
) -> None:
    generate_image(image_config(example_server), ImageGenerationRequest(prompt="x", size="64x48"))
    assert server_stats()["last_submit"]["input"] == {
        "prompt": "x",
        "num_images": 1,
        "width": 64,
        "height": 48,
    }


@pytest.mark.parametrize(
    ("config", "request_", "field", "allowed"),
    [
        (
            "video",
            VideoGenerationRequest(prompt="x", duration_seconds=5),
            "duration_seconds",
            (4, 8),
        ),
        (
            "video",
            VideoGenerationRequest(prompt="x", aspect_ratio="3:2"),
            "aspect_ratio",
            ("16:9", "9:16", "1:1", "4:3", "21:9"),
        ),
        ("video", VideoGenerationRequest(prompt="x", number_of_videos=2), "number_of_videos", (1,)),
        ("image", ImageGenerationRequest(prompt="x", n=5), "n", (1, 2, 3, 4)),
        ("image", ImageGenerationRequest(prompt="x", size="4000x10"), "size", None),
        (
            "image",
            ImageGenerationRequest(prompt="x", aspect_ratio="auto"),
            "aspect_ratio",
            ("1:1", "16:9", "9:16", "4:3"),
        ),
    ],
)
def test_allowed_values_are_checked_before_anything_is_sent(
    config: str,
    request_: Any,
    field: str,
    allowed: Any,
    example_server: ExampleServer,
    server_stats: Stats,
) -> None:
    before = server_stats()
    generate = generate_video if config == "video" else generate_image
    make = video_config if config == "video" else image_config
    with pytest.raises(ValidationError) as raised:
        generate(make(example_server), request_)  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.allowed, raised.value.phase) == (
        field,
        allowed,
        "validate",
    )
    assert delta(before, server_stats())["submit"] == 0


def test_an_unknown_or_wrong_modality_model_is_refused_locally(
    example_server: ExampleServer,
) -> None:
    with pytest.raises(ValidationError) as raised:
        generate_video(
            attrs.evolve(video_config(example_server), model="example-image-1"),
            VideoGenerationRequest(prompt="x"),
        )
    assert (raised.value.field, raised.value.allowed) == ("model", ("example-video-1",))


def test_a_server_422_becomes_a_validation_error_on_the_unified_field(
    example_server: ExampleServer,
    server_stats: Stats,
) -> None:
    before = server_stats()
    with pytest.raises(ValidationError) as long_prompt:
        generate_video(video_config(example_server), VideoGenerationRequest(prompt="x" * 2001))
    with pytest.raises(ValidationError) as extra:
        generate_video(video_config(example_server), VideoGenerationRequest(prompt="x", cfg_scale=0.5))
    assert (long_prompt.value.field, long_prompt.value.value, long_prompt.value.phase) == (
        "prompt",
        2001,
        "submit",
    )
    assert "input.prompt: must be at most 2000 characters" in str(long_prompt.value)
    assert extra.value.field == "cfg_scale"
    assert extra.value.raw_response["error"]["details"] == [
        {"field": "input.cfg_scale", "message": "unknown field"}
    ]
    assert delta(before, server_stats()) == {"submit": 2, "status": 0, "result": 0, "cancel": 0}


def test_the_key_comes_from_the_config_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with ExampleServer(port=0, api_key="env-key-123456", queue_seconds=0, work_seconds=0.1) as server:
        config = attrs.evolve(video_config(server), api_key=None)
        with pytest.raises(ValidationError) as missing:
            generate_video(config, VideoGenerationRequest(prompt="x"))
        assert missing.value.field == "api_key"
        assert "EXAMPLE_API_KEY" in str(missing.value)
        assert server.service.requests["submit"] == 0
        with pytest.raises(HTTPError) as wrong:
            generate_video(attrs.evolve(config, api_key="wrong-key-0000"), VideoGenerationRequest(prompt="x"))
        assert (wrong.value.status_code, wrong.value.retryable) == (401, False)
        monkeypatch.setenv("EXAMPLE_API_KEY", "env-key-123456")
        assert generate_video(config, VideoGenerationRequest(prompt="x")).video


def test_a_lost_submit_answer_is_never_resubmitted(
    example_server: ExampleServer, server_stats: Stats
) -> None:
    before = server_stats()
    with pytest.raises(UnknownSubmissionError):
        generate_video(
            video_config(example_server, "/_faults/submit-drop"), VideoGenerationRequest(prompt="x")
        )
    after = server_stats()
    assert delta(before, after)["submit"] == 1
    assert sum(after["jobs"].values()) - sum(before["jobs"].values()) == 1


def test_a_429_on_status_is_retried_after_its_retry_after(
    example_server: ExampleServer, server_stats: Stats
) -> None:
    before = server_stats()
    started = time.monotonic()
    response = generate_video(
        video_config(example_server, "/_faults/status-429-once"), VideoGenerationRequest(prompt="x")
    )
    assert time.monotonic() - started >= 1.0
    after = server_stats()
    assert response.video
    assert delta(before, after)["submit"] == 1
    assert after["responses"]["429"] - before["responses"].get("429", 0) == 1


def test_a_5xx_on_result_is_retried_on_the_same_job(
    example_server: ExampleServer, server_stats: Stats
) -> None:
    before = server_stats()
    response = generate_image(
        image_config(example_server, "/_faults/result-500-once"), ImageGenerationRequest(prompt="x")
    )
    counts = delta(before, server_stats())
    assert len(response.images) == 1
    assert (counts["submit"], counts["result"]) == (1, 2)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_deadline_cancels_the_job_at_the_server(
    api: str, example_server: ExampleServer, server_stats: Stats
) -> None:
    before = server_stats()
    config = video_config(example_server, "/_faults/slow", timeout=0.5)
    request = VideoGenerationRequest(prompt="x")
    with pytest.raises(TimeoutError) as raised:
        run(api, generate_video, generate_video_async, config, request)
    after = server_stats()
    assert raised.value.attempts[0].cancel_status == "cancelled"
    assert delta(before, after)["cancel"] == 1
    assert after["jobs"]["cancelled"] - before["jobs"].get("cancelled", 0) == 1


def test_one_pooled_connection_per_base_url_and_key() -> None:
    with ExampleServer(port=0, queue_seconds=0, work_seconds=0.05, image_work_seconds=0.05) as server:
        config = video_config(server)
        generate_video(config, VideoGenerationRequest(prompt="x"))
        generate_video(config, VideoGenerationRequest(prompt="y"))
        assert server.service.connections == 1
        generate_video(attrs.evolve(config, api_key="another-key-0002"), VideoGenerationRequest(prompt="z"))
        assert server.service.connections == 2


def test_async_generations_on_one_loop_share_a_connection() -> None:
    with ExampleServer(port=0, queue_seconds=0, work_seconds=0.05) as server:
        config = video_config(server)

        async def twice() -> None:
            await generate_video_async(config, VideoGenerationRequest(prompt="x"))
            await generate_video_async(config, VideoGenerationRequest(prompt="y"))

        asyncio.run(twice())
        assert server.service.connections == 1


def test_the_tarash_command_gains_an_example_server_subcommand(
    sigint_raises: None, reaped: list[subprocess.Popen[str]]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tarash.tarash_gateway.cli", "example-server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    reaped.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Example API listening on http://127.0.0.1:")
    assert httpx.get(f"{line.split()[4]}/_admin/stats").json()["connections"] == 1
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


def test_a_local_first_frame_is_sent_inline_as_a_data_uri(
    example_server: ExampleServer, server_stats: Stats, tmp_path: Path
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (tmp_path / "first.png").write_bytes(png)
    request = VideoGenerationRequest(
        prompt="a lighthouse", image_list=[{"image": tmp_path / "first.png", "type": "first_frame"}]
    )
    generate_video(video_config(example_server), request)
    sent = server_stats()["last_submit"]["input"]
    assert sent["image_url"] == "data:image/png;base64," + base64.b64encode(png).decode()
