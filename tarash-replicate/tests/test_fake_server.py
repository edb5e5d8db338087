"""The fake Replicate API itself: auth, routes, status flow, counts and faults, over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tarash_replicate.testing import FakeReplicateServer

AUTH = {"Authorization": "Bearer r8_fake_token"}


@pytest.fixture
def client(fake_replicate: FakeReplicateServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_replicate.url, timeout=10) as session:
        yield session


def create(client: httpx.Client, **headers: str) -> dict:
    answer = client.post(
        "/v1/models/google/veo-3/predictions", json={"input": {"prompt": "x"}}, headers={**AUTH, **headers}
    )
    assert answer.status_code == 201
    return answer.json()


def test_every_request_needs_the_bearer_token(
    client: httpx.Client, fake_replicate: FakeReplicateServer
) -> None:
    answer = client.post(
        "/v1/predictions", json={"version": "v", "input": {}}, headers={"Authorization": "Token x"}
    )
    assert answer.status_code == 401
    assert answer.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }
    assert fake_replicate.counts["submit"] == 1 and fake_replicate.submissions == []


def test_the_status_flow_and_what_is_counted_as_status_or_result(
    client: httpx.Client, fake_replicate: FakeReplicateServer
) -> None:
    created = create(client)
    assert created["status"] == "starting" and created["urls"]["get"].endswith(
        f"/v1/predictions/{created['id']}"
    )
    seen = [client.get(f"/v1/predictions/{created['id']}", headers=AUTH).json()["status"] for _ in range(5)]
    assert seen == ["starting", "processing", "processing", "succeeded", "succeeded"]
    assert fake_replicate.counts["status"] == 4 and fake_replicate.counts["result"] == 1


def test_prefer_wait_answers_with_the_finished_prediction(client: httpx.Client) -> None:
    created = create(client, Prefer="wait=10")
    assert created["status"] == "succeeded"
    assert created["output"] == f"https://replicate.delivery/xezq/{created['id']}/output.mp4"


def test_cancel_of_a_finished_prediction_leaves_it_finished(client: httpx.Client) -> None:
    done = create(client, Prefer="wait")
    again = client.post(f"/v1/predictions/{done['id']}/cancel", headers=AUTH).json()
    assert again["status"] == "succeeded"
    running = create(client)
    assert client.post(f"/v1/predictions/{running['id']}/cancel", headers=AUTH).json()["status"] == "canceled"


def test_unknown_routes_and_predictions_are_404_problems(client: httpx.Client) -> None:
    assert client.get("/v1/predictions/nope", headers=AUTH).json()["title"] == "Not found"
    assert client.delete("/v1/predictions/nope", headers=AUTH).status_code == 501
    assert client.get("/v1/models/a/b", headers=AUTH).status_code == 404


def test_injected_429_carries_retry_after(client: httpx.Client, fake_replicate: FakeReplicateServer) -> None:
    fake_replicate.inject("submit", status_code=429, retry_after=7)
    answer = client.post("/v1/models/google/veo-3/predictions", json={"input": {}}, headers=AUTH)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "7")
    assert fake_replicate.submissions == []


def test_a_dropped_create_still_creates_the_prediction(
    client: httpx.Client, fake_replicate: FakeReplicateServer
) -> None:
    fake_replicate.inject("submit", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/models/google/veo-3/predictions", json={"input": {"prompt": "x"}}, headers=AUTH)
    assert len(fake_replicate.submissions) == 1


def test_a_422_problem_lists_the_invalid_fields(
    client: httpx.Client, fake_replicate: FakeReplicateServer
) -> None:
    fake_replicate.schemas["acme/m"] = {
        "components": {"schemas": {"Input": {"required": ["prompt"], "properties": {"prompt": {}}}}}
    }
    answer = client.post("/v1/models/acme/m/predictions", json={"input": {}}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json() == {
        "title": "Input validation failed",
        "detail": "- input.prompt: prompt is required\n",
        "status": 422,
        "invalid_fields": [
            {"type": "required", "field": "input.prompt", "description": "prompt is required"}
        ],
    }


def test_the_signing_secret_endpoint(client: httpx.Client, fake_replicate: FakeReplicateServer) -> None:
    answer = client.get("/v1/webhooks/default/secret", headers=AUTH).json()
    assert answer == {"key": fake_replicate.webhook_secret} and answer["key"].startswith("whsec_")
