"""What the conformance kit's tests share: the :class:`Harness` around the provider under test,
the gateway the kit generates with (core's transport, counting what it sends), entry-point probes
in fresh interpreters, and request-count checks."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ..exceptions import Phase
from ..models import ImageGenerationConfig, VideoGenerationConfig
from ..plugin import MODALITIES, JobRef, ProviderSpec, SubmittedJob

if TYPE_CHECKING:
    from .._gateway import Gateway
    from .._transport import Prepared

__all__ = [
    "MODES",
    "ConfigFactory",
    "CountsFn",
    "Harness",
    "count_problems",
    "fail",
    "kit_gateway",
    "probe",
    "submitted_job",
]

#: ``make_config(modality, scenario)`` -> a config for that scenario, or None if not possible.
ConfigFactory = Callable[[str, str], Any]
#: ``server_counts()`` -> requests received so far, by kind: submit, status, result, cancel.
CountsFn = Callable[[], Mapping[str, int]]

PROBE = Path(__file__).with_name("_probe.py")
#: The engine's phase of each hook the kit calls directly.
PHASES: dict[str, Phase] = {"submit": "submit", "status": "poll", "result": "result", "cancel": "cancel"}
LIFECYCLE_ONLY = "there is no job to poll, cancel or resume"
#: The APIs :meth:`Harness.generate` runs a generation through.
MODES = ("sync", "async")


def _counting_transport() -> Any:
    # lazy: only the scenarios that drive the engine load it
    from .._transport import Transport

    class CountingTransport(Transport):
        """Core's transport, counting the requests it sends per provider."""

        def __init__(self) -> None:
            super().__init__()
            self.sent: collections.Counter[str] = collections.Counter()
            self.sent_lock = threading.Lock()

        def _count(self, prepared: Prepared) -> None:
            with self.sent_lock:
                self.sent[prepared.pool.provider] += 1

        def send(self, prepared: Prepared, timeout: float) -> Any:
            self._count(prepared)
            return super().send(prepared, timeout)

        async def send_async(self, prepared: Prepared, timeout: float) -> Any:
            self._count(prepared)
            return await super().send_async(prepared, timeout)

    return CountingTransport()


_GATEWAY: Gateway | None = None


def kit_gateway() -> Gateway:
    """The gateway the kit generates with: installed plugins, no ledger, a counting transport."""
    global _GATEWAY
    if _GATEWAY is None:
        # lazy: only the scenarios that drive the engine load it
        from .._gateway import Gateway

        _GATEWAY = Gateway(ledger="off", transport=_counting_transport())
    return _GATEWAY


@attrs.define
class Harness:
    """What the tests of the kit share: the provider under test and ways to run it."""

    provider: str
    spec: ProviderSpec
    make_config: ConfigFactory
    api_key: str
    requests: Mapping[str, Any]
    server_counts: CountsFn | None
    gateway: Gateway = attrs.field(factory=kit_gateway)

    def declares(self, modality: str) -> bool:
        return modality in self.spec.modalities

    def implements(self, hook: str) -> bool:
        return self.gateway.host.implements(self.provider, hook)

    @property
    def lifecycle(self) -> bool:
        """Whether the provider hands out jobs (submit/status/result), or is a blocking provider."""
        return self.implements("submit")

    def require_lifecycle(self, what: str) -> None:
        if not self.lifecycle:
            pytest.skip(
                f"{self.provider} is a blocking provider (generate_video/generate_image, no submit "
                f"hook): {LIFECYCLE_ONLY}, so {what} does not apply"
            )

    def primary_modality(self) -> str:
        return next(m for m in MODALITIES if self.declares(m))

    def config(self, modality: str, scenario: str = "ok", **overrides: Any) -> Any:
        """The plugin's config for ``scenario``, with the kit's API key; skips or fails clearly."""
        if not self.declares(modality):
            pytest.skip(
                f"{self.provider} does not declare {modality} "
                f"(ProviderSpec.modalities = {sorted(self.spec.modalities)})"
            )
        config = self.make_config(modality, scenario)
        if config is None:
            if scenario == "ok":
                pytest.fail(
                    f"ProviderSpec.modalities declares {modality!r} but "
                    f"make_config({modality!r}, 'ok') returned None",
                    pytrace=False,
                )
            pytest.skip(
                f"make_config({modality!r}, {scenario!r}) returned None: "
                f"{self.provider} cannot provoke this scenario"
            )
        expected = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
        if not isinstance(config, expected) or config.provider != self.provider:
            pytest.fail(
                f"make_config({modality!r}, {scenario!r}) must return a "
                f"{expected.__name__} with provider={self.provider!r}, got {config!r}",
                pytrace=False,
            )
        return attrs.evolve(config, api_key=self.api_key, **overrides)

    def generate(
        self, modality: str, config: Any, mode: str, on_progress: Callable[[Any], Any] | None = None
    ) -> Any:
        request = self.requests[modality]
        gw = self.gateway
        if mode == "sync":
            sync = gw.generate_video if modality == "video" else gw.generate_image
            return sync(config, request, on_progress)
        run_async = gw.generate_video_async if modality == "video" else gw.generate_image_async
        return asyncio.run(run_async(config, request, on_progress))

    def counts(self) -> dict[str, int] | None:
        if self.server_counts is None:
            return None
        return dict(self.server_counts())

    def core_sent(self) -> int:
        """Requests of this provider that core's transport sent so far."""
        transport: Any = self.gateway.transport
        with transport.sent_lock:
            return int(transport.sent[self.provider])

    def call_hook(
        self, hook: str, *, modality: str, config: Any, job: JobRef | None = None, request: Any = None
    ) -> Any:
        """Run the plugin's ``hook`` flow once through core (no polling loop, retries or fallback):
        core sends its requests, throws HTTP errors into it and maps what it raises."""
        # lazy: only the scenarios that drive the engine load it
        from .. import _engine as engine
        from .. import _runtime as rt

        if not self.implements(hook):
            pytest.fail(f"{self.provider} has no {hook} hook", pytrace=False)
        attempt = engine.Attempt(
            gateway=self.gateway,
            config=config,
            request=request if request is not None else self.requests[modality],
            modality=modality,  # type: ignore[arg-type]
            number=1,
            provider=self.provider,
            on_progress=None,
        )
        attempt.job = job
        kwargs: dict[str, Any] = {"config": config, "context": attempt.context()}
        if job is None:
            kwargs["request"] = attempt.request
        else:
            kwargs["job"] = job
        flow = engine.run_flow(attempt, hook, PHASES.get(hook, "submit"), **kwargs)
        return rt.drive_sync(flow, self.gateway.background)


def count_problems(
    before: Mapping[str, int] | None, after: Mapping[str, int] | None, expected: Mapping[str, int]
) -> list[str]:
    if before is None or after is None:
        return []
    return [
        f"the server received {after.get(kind, 0) - before.get(kind, 0)} {kind} request(s), expected {count}"
        for kind, count in expected.items()
        if after.get(kind, 0) - before.get(kind, 0) != count
    ]


def fail(title: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(title + "\n  - " + "\n  - ".join(problems), pytrace=False)


_PROBES: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}


def probe(provider: str, allowed: Collection[str]) -> dict[str, Any]:
    key = (provider, tuple(sorted(allowed)))
    if key not in _PROBES:
        env = {
            **os.environ,
            "TARASH_PLUGINS": provider,
            "TARASH_STRICT_PLUGINS": "1",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        done = subprocess.run(
            [sys.executable, str(PROBE), provider, json.dumps(sorted(allowed))],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"the entry-point probe crashed:\n{done.stderr[-2000:]}", pytrace=False)
        _PROBES[key] = json.loads(done.stdout.strip().splitlines()[-1])
    return _PROBES[key]


@contextmanager
def submitted_job(h: Harness) -> Iterator[tuple[Any, SubmittedJob]]:
    """Submit through the plugin's submit flow alone (no polling); cancel the job afterwards."""
    h.require_lifecycle("SubmittedJob.data")
    modality = h.primary_modality()
    config = h.config(modality, timeout=30.0)
    job = h.call_hook("submit", modality=modality, config=config)
    if not isinstance(job, SubmittedJob) or not isinstance(job.job_id, str) or not job.job_id:
        pytest.fail(f"submit returned {job!r}, expected a SubmittedJob with a job_id", pytrace=False)
    try:
        yield config, job
    finally:
        if h.spec.capabilities.cancel:
            ref = JobRef(
                provider=h.provider,
                model=config.model,
                modality=modality,  # type: ignore[arg-type]
                job_id=job.job_id,
                data=dict(job.data),
            )
            h.call_hook("cancel", modality=modality, config=config, job=ref)
