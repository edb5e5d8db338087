"""Shared helpers: build hook arguments, and drive a flow by hand (against the fake or canned answers)."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway.exceptions import HTTPError
from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
from tarash.tarash_gateway.plugin import CallContext, JobRef, Request, Response

pytest_plugins = ["tarash_replicate.testing"]

TOKEN = "r8_fake_token"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fresh_venv: slow; builds a virtualenv (deselect with -m 'not fresh_venv')"
    )


def context(modality: str = "video", **kwargs: Any) -> CallContext:
    fields: dict[str, Any] = {"provider": "replicate", "modality": modality, "timeout": 30.0}
    fields.update(kwargs)
    return CallContext(**fields)


def video_config(model: str = "google/veo-3", **kwargs: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="replicate", model=model, **kwargs)


def image_config(model: str = "google/imagen-4", **kwargs: Any) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider="replicate", model=model, **kwargs)


def job(job_id: str = "p1", modality: str = "video", model: str = "google/veo-3", **data: Any) -> JobRef:
    return JobRef(provider="replicate", model=model, modality=modality, job_id=job_id, data=data)  # type: ignore[arg-type]


def answer(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status_code, headers=headers or {}, content=json.dumps(body).encode())


def http_error(body: Any, status_code: int) -> HTTPError:
    response = answer(body, status_code)
    return HTTPError(f"HTTP {status_code}", status_code=status_code, response=response, raw_response=body)


def finish(flow: Generator[Request, Response, Any], reply: Response) -> Any:
    """Send ``reply`` to a flow expected to end there; returns its value."""
    with pytest.raises(StopIteration) as stop:
        flow.send(reply)
    return stop.value.value


def no_request(flow: Generator[Request, Response, Any]) -> Any:
    """Run a flow expected to return without yielding any request."""
    with pytest.raises(StopIteration) as stop:
        next(flow)
    return stop.value.value


def drive(flow: Generator[Request, Response, Any], base_url: str, token: str = TOKEN) -> Any:
    """Play core's part for one flow: send each request with httpx, throw HTTPError for 4xx/5xx."""
    with httpx.Client(timeout=10) as client:
        try:
            request = next(flow)
            while True:
                url = request.url if request.url.startswith("http") else base_url.rstrip("/") + request.url
                headers = dict(request.headers)
                if request.auth:
                    headers["Authorization"] = f"Bearer {token}"
                body: dict[str, Any] = {}
                if request.json is not None:
                    body["json"] = request.json
                elif request.content is not None:
                    body["content"] = request.content
                elif request.files is not None:
                    body["files"] = dict(request.files)
                    body["data"] = dict(request.data or {})
                got = client.request(
                    request.method, url, params=dict(request.params), headers=headers, **body
                )
                response = Response(
                    status_code=got.status_code,
                    headers=dict(got.headers),
                    content=got.content,
                    url=str(got.url),
                )
                if got.status_code >= 400:
                    retry = got.headers.get("retry-after")
                    request = flow.throw(
                        HTTPError(
                            f"HTTP {got.status_code}",
                            status_code=got.status_code,
                            retry_after=float(retry) if retry else None,
                            response=response,
                            raw_response=got.json(),
                        )
                    )
                else:
                    request = flow.send(response)
        except StopIteration as stop:
            return stop.value
