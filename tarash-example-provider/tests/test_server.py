"""The reference server, spoken to directly over HTTP: the Example API's wire protocol."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway.mock import MEDIA_DIR
from tarash_example_provider.server import ExampleServer

AUTH = {"Authorization": "Bearer test-key-123456"}


@pytest.fixture
def api(example_server: ExampleServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=example_server.url, headers=AUTH, timeout=5) as client:
        yield client


def wait_for(api: httpx.Client, job_id: str, until: str = "completed") -> list[dict[str, Any]]:
    """Poll a job every 20 ms until ``until``; every status answer, in order."""
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = api.get(f"/v1/jobs/{job_id}").json()
        seen.append(answer)
        if answer["status"] == until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {until}: {seen[-1]}")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_video_job_queues_renders_and_serves_a_playable_mp4(
    api: httpx.Client, example_server: ExampleServer
) -> None:
    created = api.post(
        "/v1/jobs",
        json={
            "model": "example-video-1",
            "input": {"prompt": "a lighthouse", "duration": 4, "aspect_ratio": "9:16"},
        },
    )
    assert created.status_code == 202
    job = created.json()
    assert (job["status"], job["model"]) == ("queued", "example-video-1")
    assert job["links"] == {
        "status": f"/v1/jobs/{job['id']}",
        "result": f"/v1/jobs/{job['id']}/result",
        "cancel": f"/v1/jobs/{job['id']}/cancel",
    }
    states = wait_for(api, job["id"])
    statuses = [s["status"] for s in states]
    assert (statuses[0], statuses[-1]) == ("queued", "completed")
    assert statuses == sorted(statuses, key=["queued", "processing", "completed"].index)
    assert all(s["queue_position"] == 0 for s in states if s["status"] == "queued")
    percents = [s["progress"] for s in states if s["status"] == "processing"]
    assert percents == sorted(percents)
    assert all(0 <= p < 100 for p in percents)
    assert states[-1]["logs"] == [
        "accepted example-video-1 job",
        "started on a worker",
        "rendered 25%",
        "rendered 50%",
        "rendered 75%",
        "completed",
    ]
    result = api.get(f"/v1/jobs/{job['id']}/result").json()
    video = result["output"]["video"]
    assert video == {
        "url": f"{example_server.url}/v1/files/{job['id']}.mp4",
        "content_type": "video/mp4",
        "width": 180,
        "height": 320,
        "duration_seconds": 4.0,
        "aspect_ratio": "9:16",
    }
    media = httpx.get(video["url"])
    assert media.headers["content-type"] == "video/mp4"
    assert media.content[4:8] == b"ftyp"
    assert media.content == (MEDIA_DIR / "9x16_180p_4s.mp4").read_bytes()


def test_an_image_job_serves_pngs_of_the_requested_size(api: httpx.Client) -> None:
    job = api.post(
        "/v1/jobs",
        json={
            "model": "example-image-1",
            "input": {
                "prompt": "a lighthouse",
                "num_images": 2,
                "width": 320,
                "height": 200,
                "seed": 3,
            },
        },
    ).json()
    wait_for(api, job["id"])
    images = api.get(f"/v1/jobs/{job['id']}/result").json()["output"]["images"]
    assert [i["url"].rsplit("/", 1)[1] for i in images] == [
        f"{job['id']}_0.png",
        f"{job['id']}_1.png",
    ]
    pngs = [httpx.get(i["url"]).content for i in images]
    assert [png_size(p) for p in pngs] == [(320, 200), (320, 200)]
    assert pngs[0] != pngs[1]


def test_invalid_input_is_a_422_naming_every_field(api: httpx.Client) -> None:
    answer = api.post(
        "/v1/jobs",
        json={
            "model": "example-video-1",
            "input": {"prompt": "", "duration": 5, "cfg_scale": 0.5, "seed": "7"},
        },
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "error": {
            "type": "validation_error",
            "message": "invalid request",
            "details": [
                {"field": "input.prompt", "message": "must be a non-empty string"},
                {"field": "input.cfg_scale", "message": "unknown field"},
                {
                    "field": "input.duration",
                    "message": "value not allowed",
                    "value": 5,
                    "allowed": [4, 8],
                },
                {"field": "input.seed", "message": "must be an integer", "value": "7"},
            ],
        }
    }
    unknown = api.post("/v1/jobs", json={"model": "nope", "input": {"prompt": "x"}})
    assert unknown.json()["error"]["details"] == [
        {
            "field": "model",
            "message": "unknown model",
            "value": "nope",
            "allowed": ["example-image-1", "example-video-1"],
        }
    ]


def test_a_missing_or_wrong_key_is_a_401() -> None:
    with ExampleServer(port=0, api_key="the-right-key-123") as server:
        body = {"model": "example-video-1", "input": {"prompt": "x"}}
        missing = httpx.post(f"{server.url}/v1/jobs", json=body)
        wrong = httpx.post(
            f"{server.url}/v1/jobs", json=body, headers={"Authorization": "Bearer wrong-key-456"}
        )
        right = httpx.post(
            f"{server.url}/v1/jobs",
            json=body,
            headers={"Authorization": "Bearer the-right-key-123"},
        )
    assert (missing.status_code, missing.json()["error"]["type"]) == (401, "unauthorized")
    assert (wrong.status_code, wrong.json()["error"]["message"]) == (401, "invalid API key")
    assert right.status_code == 202


def test_too_many_unfinished_jobs_is_a_429_with_retry_after() -> None:
    with (
        ExampleServer(port=0, max_active_jobs=1, queue_seconds=0.0, work_seconds=2.0) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        body = {"model": "example-video-1", "input": {"prompt": "x"}}
        assert client.post("/v1/jobs", json=body).status_code == 202
        limited = client.post("/v1/jobs", json=body)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["type"] == "rate_limited"


def test_queue_positions_count_down_as_earlier_jobs_start() -> None:
    with (
        ExampleServer(port=0, workers=1, queue_seconds=0.0, work_seconds=0.3) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        body = {"model": "example-video-1", "input": {"prompt": "x"}}
        jobs = [client.post("/v1/jobs", json=body).json() for _ in range(3)]
        assert [j["queue_position"] for j in jobs] == [None, 0, 1]
        assert [j["status"] for j in jobs] == ["processing", "queued", "queued"]
        time.sleep(0.35)
        third = client.get(f"/v1/jobs/{jobs[2]['id']}").json()
    assert (third["status"], third["queue_position"]) == ("queued", 0)


def test_cancel_stops_a_job_once_and_409s_when_it_finished(api: httpx.Client) -> None:
    body = {"model": "example-video-1", "input": {"prompt": "x"}}
    job = api.post("/v1/jobs", json=body).json()
    assert api.post(f"/v1/jobs/{job['id']}/cancel").json() == {
        "id": job["id"],
        "status": "cancelled",
    }
    again = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert (again.status_code, again.json()["error"]["message"]) == (
        409,
        f"job {job['id']} already cancelled",
    )
    assert api.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    assert api.get(f"/v1/jobs/{job['id']}/result").status_code == 409


def test_jobs_are_private_to_their_key(api: httpx.Client, example_server: ExampleServer) -> None:
    job = api.post("/v1/jobs", json={"model": "example-video-1", "input": {"prompt": "x"}}).json()
    other = httpx.get(
        f"{example_server.url}/v1/jobs/{job['id']}",
        headers={"Authorization": "Bearer someone-else-789"},
    )
    assert other.status_code == 404


def test_fault_prefixes(api: httpx.Client, server_stats: Any) -> None:
    body = {"model": "example-video-1", "input": {"prompt": "x"}}
    assert api.post("/_faults/submit-500/v1/jobs", json=body).status_code == 500
    rejected = api.post("/_faults/submit-422/v1/jobs", json=body)
    assert rejected.json()["error"]["details"][0]["field"] == "input.prompt"
    job = api.post("/v1/jobs", json=body).json()
    limited = api.get(f"/_faults/status-429/v1/jobs/{job['id']}")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "60")
    once = [api.get(f"/_faults/status-429-once/v1/jobs/{job['id']}").status_code for _ in range(2)]
    assert once == [429, 200]
    jobs_before = sum(server_stats()["jobs"].values())
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/_faults/submit-drop/v1/jobs", json=body)
    assert sum(server_stats()["jobs"].values()) == jobs_before + 1
    failing = api.post("/_faults/job-fails/v1/jobs", json=body).json()
    assert wait_for(api, failing["id"], until="failed")[-1]["error"] == {
        "type": "generation_failed",
        "message": "the model could not render this prompt",
    }


def test_stats_count_requests_by_route_and_errors_by_status(api: httpx.Client, server_stats: Any) -> None:
    before = server_stats()
    job = api.post("/v1/jobs", json={"model": "example-video-1", "input": {"prompt": "x"}}).json()
    api.get(f"/v1/jobs/{job['id']}")
    api.get(f"/v1/jobs/{job['id']}/result")
    api.post(f"/v1/jobs/{job['id']}/cancel")
    after = server_stats()
    for route in ("submit", "status", "result", "cancel"):
        assert after["requests"][route] - before["requests"].get(route, 0) == 1
    assert after["responses"]["409"] - before["responses"].get("409", 0) == 1
    assert after["last_submit"] == {"model": "example-video-1", "input": {"prompt": "x"}}


def test_the_command_line_serves_on_loopback_until_interrupted(
    sigint_raises: None, reaped: list[subprocess.Popen[str]]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tarash_example_provider.server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    reaped.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Example API listening on http://127.0.0.1:")
    url = line.split()[4]
    assert httpx.get(f"{url}/_admin/stats").json()["requests"] == {}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
