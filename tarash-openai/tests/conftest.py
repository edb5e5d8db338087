"""Helpers to drive the flows by hand, and the fake Images API fixture."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from tarash.tarash_gateway.plugin import CallContext, Request, Response

pytest_plugins = ["tarash_openai.testing"]


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


def context(provider: str = "openai", base_url: str = "https://api.openai.com/v1") -> CallContext:
    return CallContext(provider=provider, modality="image", timeout=60.0, base_url=base_url)


def answer(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status_code=status_code, headers=headers or {}, content=content)


def run(flow: Generator[Request, Response, Any], *answers: Response) -> tuple[list[Request], Any]:
    """Drive ``flow`` with ``answers`` in order; the requests it yielded and what it returned."""
    requests = [next(flow)]
    for reply in answers:
        try:
            requests.append(flow.send(reply))
        except StopIteration as stop:
            return requests, stop.value
    raise AssertionError(f"the flow wanted more than {len(answers)} answers: {requests[-1]}")
