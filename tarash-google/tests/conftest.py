"""Shared fixtures, and a driver that runs a flow against a fake the way core's engine does."""

from __future__ import annotations

import json
import socket
from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway.exceptions import HTTPError
from tarash.tarash_gateway.plugin import CallContext, JobRef, Response
from tarash_google import clear_token_cache
from tarash_google.testing import FakeGoogle, fake_google  # noqa: F401  (the shipped fixture)


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def drive(flow: Generator[Any, Any, Any], base_url: str, api_key: str | None = None) -> Any:
    """Send each Request the flow yields (root joined, x-goog-api-key added when ``auth``),
    hand 2xx/3xx back and throw HTTPError for the rest; return what the flow returns."""
    sent: Any = None
    throw: BaseException | None = None
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        while True:
            try:
                request = flow.throw(throw) if throw is not None else flow.send(sent)
            except StopIteration as stop:
                return stop.value
            throw = None
            url = request.url if "://" in request.url else base_url.rstrip("/") + request.url
            headers = dict(request.headers)
            if request.auth and api_key is not None:
                headers["x-goog-api-key"] = api_key
            answer = client.request(
                request.method,
                url,
                params=request.params or None,
                headers=headers,
                json=request.json,
                content=request.content,
            )
            sent = Response(
                status_code=answer.status_code,
                headers=dict(answer.headers),
                content=answer.content,
                url=str(answer.url),
            )
            if answer.status_code >= 400:
                try:
                    raw = json.loads(answer.content)
                except ValueError:
                    raw = answer.text
                throw = HTTPError(
                    f"HTTP {answer.status_code}",
                    status_code=answer.status_code,
                    response=sent,
                    raw_response=raw,
                )


def context(provider: str = "google", modality: str = "video") -> CallContext:
    return CallContext(provider=provider, modality=modality, timeout=30)  # type: ignore[arg-type]


def job_ref(job: Any, model: str, provider: str = "google", modality: str = "video") -> JobRef:
    return JobRef(provider=provider, model=model, modality=modality, job_id=job.job_id, data=job.data)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle(processing_polls=1) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
