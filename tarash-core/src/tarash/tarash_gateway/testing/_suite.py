"""The provider conformance suite: :class:`ProviderConformanceTests` and its scenarios."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

from ..exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    Phase,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
    UnsupportedModalityError,
    ValidationError,
)
from ..models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from ..plugin import MODALITIES, JobRef, JobStatus, ProviderSpec, SubmittedJob
from . import _checks

if TYPE_CHECKING:
    from .._gateway import Gateway
    from .._transport import Prepared

__all__ = [
    "SCENARIOS",
    "ConfigFactory",
    "CountsFn",
    "Harness",
    "ProviderConformanceTests",
    "Scenario",
]

#: ``make_config(modality, scenario)`` -> a config for that scenario, or None if not possible.
ConfigFactory = Callable[[str, str], Any]
#: ``server_counts()`` -> requests received so far, by kind: submit, status, result, cancel.
CountsFn = Callable[[], Mapping[str, int]]

PLUGIN = "tarash.tarash_gateway.testing.plugin"
MODES = ("sync", "async")
TERMINAL = ("completed", "failed", "cancelled")
PROBE = Path(__file__).with_name("_probe.py")
#: The engine's phase of each hook the kit calls directly.
PHASES: dict[str, Phase] = {"submit": "submit", "status": "poll", "result": "result", "cancel": "cancel"}
LIFECYCLE_ONLY = "there is no job to poll, cancel or resume"
#: What core's transport says when it refuses a request carrying the key (see ``_transport``).
KEY_REFUSED = "plugin put the API key into a request it described"


@attrs.frozen
class Scenario:
    """A fault the provider's test double can produce, and the error Tarash users must then get.

    Attributes:
        name: what ``make_config(modality, name)`` is asked for.
        provoke: what the config must make happen.
        error: the exception type the caller must receive.
        phases: accepted values of the exception's ``phase``.
        check: extra check of the exception; returns a problem or None.
        counts: exact number of requests of each kind the server must receive (needs
            ``server_counts``; a blocking provider counts its generation requests as ``submit``).
        lifecycle_only: the scenario needs a job (skipped for blocking providers).
    """

    name: str
    provoke: str
    error: type[TarashException]
    phases: tuple[str, ...]
    check: Callable[[Any], str | None]
    counts: Mapping[str, int] = attrs.field(factory=dict)
    lifecycle_only: bool = False


def _refused(exc: Any) -> str | None:
    if exc.request_sent is False:
        return None
    return (
        "HTTPConnectionError.request_sent must be False when the connection was refused: "
        "core may retry a submit only then"
    )


def _names_field(exc: Any) -> str | None:
    if isinstance(exc.field, str) and exc.field:
        return None
    return "ValidationError.field must name the offending field (from the provider's details)"


def _server_error(exc: Any) -> str | None:
    if isinstance(exc.status_code, int) and 500 <= exc.status_code < 600:
        return None
    return f"HTTPError.status_code must be the provider's 5xx status, got {exc.status_code!r}"


def _rate_limited(exc: Any) -> str | None:
    if exc.status_code != 429:
        return f"HTTPError.status_code must be 429, got {exc.status_code!r}"
    if not isinstance(exc.retry_after, (int, float)) or exc.retry_after <= 0:
        return f"HTTPError.retry_after must carry the Retry-After seconds, got {exc.retry_after!r}"
    return None


def _never_resent(exc: Any) -> str | None:
    return None


def _job_failed(exc: Any) -> str | None:
    if exc.request_id:
        return None
    return "GenerationFailedError.request_id must be the job id"


#: The error scenarios, by name. ``make_config(modality, name)`` returns None for any it cannot do.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "unreachable",
            "the provider's endpoint refuses connections (e.g. a closed port)",
            HTTPConnectionError,
            ("submit",),
            _refused,
        ),
        Scenario(
            "rejected",
            "the submit is answered with a 4xx validation error naming a field",
            ValidationError,
            ("validate", "submit"),
            _names_field,
            {"submit": 1, "status": 0},
        ),
        Scenario(
            "server_error",
            "the submit is answered with a 5xx error (no job is created)",
            HTTPError,
            ("submit",),
            _server_error,
            {"submit": 1, "status": 0},
        ),
        Scenario(
            "rate_limited",
            "status calls are answered 429 with Retry-After: 60",
            HTTPError,
            ("poll",),
            _rate_limited,
            {"submit": 1, "status": 1, "result": 0},
            lifecycle_only=True,
        ),
        Scenario(
            "job_failed",
            "the job is accepted and then fails at the provider",
            GenerationFailedError,
            ("poll",),
            _job_failed,
            {"submit": 1, "result": 0},
            lifecycle_only=True,
        ),
        Scenario(
            "lost_answer",
            "the submit (or blocking generation) reaches the server, which closes the connection "
            "without answering",
            UnknownSubmissionError,
            ("submit",),
            _never_resent,
            {"submit": 1, "status": 0},
        ),
    )
}


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


def _count_problems(
    before: Mapping[str, int] | None, after: Mapping[str, int] | None, expected: Mapping[str, int]
) -> list[str]:
    if before is None or after is None:
        return []
    return [
        f"the server received {after.get(kind, 0) - before.get(kind, 0)} {kind} request(s), expected {count}"
        for kind, count in expected.items()
        if after.get(kind, 0) - before.get(kind, 0) != count
    ]


def _fail(title: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(title + "\n  - " + "\n  - ".join(problems), pytrace=False)


_PROBES: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}


def _probe(provider: str, allowed: Collection[str]) -> dict[str, Any]:
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
def _submitted_job(h: Harness) -> Iterator[tuple[Any, SubmittedJob]]:
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


class ProviderConformanceTests:
    """The Tarash provider conformance kit: subclass it in your plugin's tests.

    Every provider plugin inherits the same contract tests: discovery through its entry point,
    lazy and light imports, every request sent by core (none of the plugin's own), HTTP errors let
    through to core, the key left to core's auth header, the progress contract, the error taxonomy
    per phase, secrets kept out of logs and errors, a lost answer never resent, cancel when claimed,
    and JSON-safe job handles. Blocking providers (``generate_video``/``generate_image``, no
    ``submit``) run the same kit; the tests that need a job are skipped with the reason.

    **Quick start** (``tests/test_conformance.py`` of your plugin)::

        import pytest
        from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
        from tarash.tarash_gateway.testing import ProviderConformanceTests

        pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]


        class TestMyProvider(ProviderConformanceTests):
            @pytest.fixture
            def provider_name(self):
                return "myprovider"

            @pytest.fixture
            def make_config(self, my_fake_server):
                def make(modality, scenario):
                    config = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
                    model = "my-video-model" if modality == "video" else "my-image-model"
                    return config(provider="myprovider", model=model, poll_interval=0.05,
                                  base_url=my_fake_server.url_for(scenario))
                return make

    Install ``tarash-core[testing]`` and your plugin (the kit tests the *installed* entry point),
    then run ``pytest``. The ``pytest_plugins`` line opts in to the kit's pytest plugin (it is not
    auto-loaded); it may also go in your top-level ``conftest.py``.

    **Fixtures you provide**

    ``provider_name`` (required)
        The provider name, equal to your entry point's name in the ``tarash`` group.
    ``make_config`` (required)
        A function ``(modality, scenario) -> config or None``. ``modality`` is ``"video"`` or
        ``"image"``; return a ``VideoGenerationConfig`` / ``ImageGenerationConfig`` for your
        provider pointed at your test double (a local server on 127.0.0.1 speaking the real wire
        protocol). Keep ``poll_interval`` small. The kit sets ``api_key`` itself (to a distinctive
        key it then hunts for), so your server must accept any key. Scenarios:

        * ``"ok"``: the job completes within a few seconds, spending some time queued and some
          processing (so claimed capabilities can be observed). Required for every declared
          modality.
        * ``"slow"``: the job is accepted and does not finish for at least 30 s (cancel test).
        * the error scenarios in :data:`SCENARIOS`: ``"unreachable"``, ``"rejected"``,
          ``"server_error"``, ``"rate_limited"``, ``"job_failed"``, ``"lost_answer"`` (the
          server processes the submit, then closes the connection without answering).

        Return ``None`` for a scenario your double cannot produce: its tests are skipped with that
        reason. ``make_config`` is called right before each generation of a fault scenario, once
        per generation, so a double with stateful fault injection can arm the fault there.
        (Returning a config for a modality you do not declare fails the kit: you can generate
        it, so declare it.)
    ``server_counts`` (recommended; default None)
        A function returning the number of requests your server received so far by kind, a
        mapping with the keys ``"submit"``, ``"status"``, ``"result"`` and ``"cancel"``. With it
        the kit checks exact request counts (one cancel on deadline, no hidden resubmits or
        retries inside the plugin); without it those assertions are skipped.
    ``video_request`` / ``image_request`` (optional)
        The request used for generations (default: a short prompt with no other field set).
    ``allowed_entry_imports`` (optional; default empty)
        Top-level packages your entry module may import at import time besides the standard
        library, tarash, attrs, cattrs, pluggy and your own package.

    **What it checks** (one test each, parametrized by modality and sync/async API where it
    matters): the entry point is registered, loads and resolves the provider; ``import
    tarash.tarash_gateway`` does not import the plugin; the entry module imports nothing heavy
    (failures name the module, its importer and the line); hooks match the capabilities;
    each declared modality generates a well-formed response through the sync and the async API,
    with the key left to core's auth header; every request the server receives was sent by core's
    transport (the kit counts them); a 5xx thrown into the submit flow reaches core; progress
    updates are typed, ordered queued -> processing -> completed and show the claimed
    capabilities; undeclared modalities raise ``UnsupportedModalityError``; each error scenario
    raises the documented exception, phase and request counts (a lost submit answer is
    ``UnknownSubmissionError`` after exactly one submit); the API key never appears in logs,
    output, exceptions (whole chain), responses or progress; a deadline cancels the job exactly
    once; ``SubmittedJob.data`` is plain JSON without the key, and a ``JobRef`` rebuilt from JSON
    can be polled to completion.

    The kit generates with a gateway of its own (installed plugins, ledger off, core's transport
    wrapped to count what it sends), and calls single hooks the way core does: the flow runs
    through core's engine, which sends its requests and throws HTTP errors into it.

    **Capability flags** are read from your ``ProviderSpec`` (``Capabilities``), never passed in:
    ``cancel`` enables the cancel test (skipped otherwise, with the reason) and must match the
    presence of a cancel hook; ``queue_position``, ``progress_percent`` and ``logs`` must be
    observable in the ``"ok"`` run's progress updates; ``resume`` enables the resume-from-JSON
    test. ``ProviderSpec.modalities`` decides which modality tests run and which must raise
    ``UnsupportedModalityError``.

    **Strict mode**: the kit's pytest plugin sets ``TARASH_STRICT_PLUGINS=1``, and the entry-point
    probes run in fresh interpreters with it, so a plugin that fails to import or register fails
    loudly instead of being skipped.

    **Adjusting**: override a test in your subclass to change it (document why), or set
    ``cancel_deadline_seconds`` (deadline of the cancel test, default 1 s) and
    ``fault_deadline_seconds`` (deadline of the error scenarios, default 10 s; ``Retry-After`` in
    ``"rate_limited"`` must exceed it).
    """

    cancel_deadline_seconds: ClassVar[float] = 1.0
    fault_deadline_seconds: ClassVar[float] = 10.0

    # -- fixtures the plugin provides ----------------------------------------------------------

    @pytest.fixture
    def provider_name(self) -> str:
        pytest.fail("override the provider_name fixture: return your provider's name", pytrace=False)

    @pytest.fixture
    def make_config(self) -> ConfigFactory:
        pytest.fail(
            "override the make_config fixture: return a function (modality, scenario) -> "
            "config or None (see ProviderConformanceTests)",
            pytrace=False,
        )

    @pytest.fixture
    def server_counts(self) -> CountsFn | None:
        return None

    @pytest.fixture
    def video_request(self) -> VideoGenerationRequest:
        return VideoGenerationRequest(prompt="conformance check: a lighthouse at dusk")

    @pytest.fixture
    def image_request(self) -> ImageGenerationRequest:
        return ImageGenerationRequest(prompt="conformance check: a lighthouse at dusk")

    @pytest.fixture
    def allowed_entry_imports(self) -> Collection[str]:
        return ()

    # -- the kit's own fixtures ----------------------------------------------------------------

    @pytest.fixture
    def tarash_harness(
        self,
        request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch,
        provider_name: str,
        make_config: ConfigFactory,
        server_counts: CountsFn | None,
        video_request: VideoGenerationRequest,
        image_request: ImageGenerationRequest,
    ) -> Harness:
        if not request.config.pluginmanager.has_plugin(PLUGIN):
            pytest.fail(
                f'add pytest_plugins = ["{PLUGIN}"] to your conftest.py or test module',
                pytrace=False,
            )
        api_key: str = request.getfixturevalue("tarash_api_key")
        spec = kit_gateway().get_provider(provider_name).spec
        if spec.api_key_env:
            monkeypatch.setenv(spec.api_key_env, api_key)
        return Harness(
            provider=provider_name,
            spec=spec,
            make_config=make_config,
            api_key=api_key,
            requests={"video": video_request, "image": image_request},
            server_counts=server_counts,
        )

    # -- discovery -----------------------------------------------------------------------------

    def test_entry_point_is_registered(
        self, provider_name: str, allowed_entry_imports: Collection[str]
    ) -> None:
        report = _probe(provider_name, allowed_entry_imports)
        found = report["entry_points"]
        if len(found) != 1:
            pytest.fail(
                f"expected one entry point named {provider_name!r} in the 'tarash' group, "
                f"found {found}: declare [project.entry-points.tarash] "
                f'{provider_name} = "your_package._plugin" and reinstall',
                pytrace=False,
            )
        _fail(
            f"entry point {provider_name} = {found[0]} does not load",
            [f"loading it raised {report[key]}" for key in ("load_error", "provider_error") if key in report],
        )
        provider = report["provider"]
        if (provider["source"], provider["plugin"]) != ("entry-point", provider_name):
            pytest.fail(
                f"get_provider({provider_name!r}) resolves to the {provider['source']} "
                f"plugin {provider['plugin']!r}, not to the entry point",
                pytrace=False,
            )

    def test_importing_tarash_does_not_import_the_plugin(
        self,
        provider_name: str,
        allowed_entry_imports: Collection[str],
    ) -> None:
        report = _probe(provider_name, allowed_entry_imports)
        if "imported_by_core" not in report:
            pytest.skip("no single entry point (see test_entry_point_is_registered)")
        _fail(
            "`import tarash.tarash_gateway` imported the plugin; discovery must be lazy",
            [f"{name} was imported" for name in report["imported_by_core"]],
        )

    def test_entry_module_imports_are_light(
        self, provider_name: str, allowed_entry_imports: Collection[str]
    ) -> None:
        report = _probe(provider_name, allowed_entry_imports)
        if "heavy" not in report:
            pytest.skip("no single entry point (see test_entry_point_is_registered)")
        _fail(
            "loading the entry module imported packages beyond the standard library and "
            "tarash-core; import them inside your hooks (or list them in allowed_entry_imports)",
            [f"{h['module']} (imported by {h['importer']} at {h['where']})" for h in report["heavy"]],
        )

    def test_capabilities_match_hooks(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        has = {
            hook: h.implements(hook)
            for hook in ("submit", "status", "result", "cancel", "generate_video", "generate_image")
        }
        caps = h.spec.capabilities
        problems = []
        if has["submit"] and not (has["status"] and has["result"]):
            problems.append("implements submit but not both status and result")
        if not has["submit"]:
            problems.extend(
                f"declares {m} but has neither submit nor generate_{m} hooks"
                for m in sorted(h.spec.modalities)
                if not has[f"generate_{m}"]
            )
        if caps.cancel and not has["cancel"]:
            problems.append(
                "Capabilities.cancel is True but there is no cancel hook: core cannot stop abandoned jobs"
            )
        if has["cancel"] and not caps.cancel:
            problems.append(
                "implements cancel but Capabilities.cancel is False, so core never calls it: declare it"
            )
        _fail(f"{h.provider}'s hooks do not match its ProviderSpec", problems)

    # -- generation ----------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("modality", MODALITIES)
    def test_generate(self, tarash_harness: Harness, modality: str, mode: str) -> None:
        h = tarash_harness
        config = h.config(modality)
        error: TarashException | None = None
        try:
            response = h.generate(modality, config, mode)
        except TarashException as exc:
            error = exc
        if error is not None:
            unsupported = isinstance(error, NotImplementedError) or isinstance(
                error.__cause__, NotImplementedError
            )
            if KEY_REFUSED in str(error):
                pytest.fail(
                    f"{h.provider} put the API key into a request it described (a header, the URL, "
                    "the query or the body) and core refused to send it. Core adds the key itself: "
                    "declare ProviderSpec.auth_header and auth_scheme (default 'Authorization: "
                    "Bearer <key>') and leave Request.auth=True",
                    pytrace=False,
                )
            pytest.fail(
                f"ProviderSpec.modalities declares {modality!r} but {mode} generation raised "
                f"{type(error).__name__}: {error}; remove {modality!r} from modalities or "
                "implement it"
                if unsupported
                else f"{mode} {modality} generation with make_config({modality!r}, 'ok') failed: "
                f"{type(error).__name__}: {error}",
                pytrace=False,
            )
        _fail(
            f"{mode} {modality} generation returned a bad response",
            _checks.response_problems(response, modality=modality, provider=h.provider),
        )

    @pytest.mark.parametrize("mode", MODES)
    def test_requests_go_through_core(self, tarash_harness: Harness, mode: str) -> None:
        h = tarash_harness
        if h.server_counts is None:
            pytest.skip("no server_counts fixture: the kit cannot compare the server's counts")
        modality = h.primary_modality()
        config = h.config(modality)
        before, sent = h.counts(), h.core_sent()
        h.generate(modality, config, mode)
        after, sent = h.counts(), h.core_sent() - sent
        assert before is not None and after is not None
        received = sum(after.get(k, 0) - before.get(k, 0) for k in ("submit", "status", "result", "cancel"))
        if received > sent:
            pytest.fail(
                f"the server received {received} request(s) but core's transport sent {sent}: "
                f"{h.provider} sends HTTP of its own (a client or SDK in a hook). Yield Request "
                "records from the hooks and let core send them (its deadline, pooling and "
                "was-it-sent decision depend on it)",
                pytrace=False,
            )

    def test_http_errors_reach_core(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        modality = h.primary_modality()
        config = h.config(modality, "server_error", timeout=self.fault_deadline_seconds)
        hook = "submit" if h.lifecycle else f"generate_{modality}"
        try:
            returned = h.call_hook(hook, modality=modality, config=config)
        except TarashException:
            return
        pytest.fail(
            f"{hook} returned {returned!r:.120} although the provider answered with a 5xx error "
            "(make_config(..., 'server_error')): the flow swallowed the HTTPError core threw into "
            "it. Catch only the errors you translate (a 422 into ValidationError...) and re-raise "
            "the rest: core decides what to retry from them",
            pytrace=False,
        )

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("modality", MODALITIES)
    def test_progress_contract(self, tarash_harness: Harness, modality: str, mode: str) -> None:
        h = tarash_harness
        config = h.config(modality)
        h.require_lifecycle("the progress contract (queued -> processing -> completed)")
        updates: list[Any] = []
        response = h.generate(modality, config, mode, updates.append)
        _fail(
            f"{mode} {modality} progress updates break the progress contract",
            _checks.progress_problems(
                updates,
                modality=modality,
                provider=h.provider,
                capabilities=h.spec.capabilities,
                response=response,
            ),
        )

    @pytest.mark.parametrize("modality", MODALITIES)
    def test_unsupported_modality_raises(self, tarash_harness: Harness, modality: str) -> None:
        h = tarash_harness
        if h.declares(modality):
            pytest.skip(f"{h.provider} declares {modality}")
        if h.make_config(modality, "ok") is not None:
            pytest.fail(
                f"make_config({modality!r}, 'ok') returned a config, so {h.provider} can "
                f"generate {modality}, but ProviderSpec.modalities = "
                f"{sorted(h.spec.modalities)}: declare {modality!r}",
                pytrace=False,
            )
        config_cls = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
        config = config_cls(provider=h.provider, model="conformance/unsupported", timeout=5)
        for mode in MODES:
            with pytest.raises(UnsupportedModalityError) as raised:
                h.generate(modality, config, mode)
            assert isinstance(raised.value, NotImplementedError)

    # -- errors and secrets --------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("scenario", list(SCENARIOS))
    def test_error_taxonomy(self, tarash_harness: Harness, scenario: str, mode: str) -> None:
        h = tarash_harness
        expected = SCENARIOS[scenario]
        modality = h.primary_modality()
        if expected.lifecycle_only:
            h.require_lifecycle(f"scenario {scenario!r} ({expected.provoke})")
        config = h.config(modality, scenario, timeout=self.fault_deadline_seconds)
        before = h.counts()
        try:
            h.generate(modality, config, mode)
        except Exception as exc:
            error: BaseException = exc
        else:
            pytest.fail(
                f"scenario {scenario!r} ({expected.provoke}) completed without an error",
                pytrace=False,
            )
        after = h.counts()
        title = (
            f"scenario {scenario!r} ({expected.provoke}) must raise "
            f"{expected.error.__name__} in phase {' or '.join(expected.phases)}"
        )
        if not isinstance(error, expected.error):
            _fail(title, [f"got {type(error).__name__}: {error}"])
        assert isinstance(error, TarashException)
        problems = []
        if error.phase not in expected.phases:
            problems.append(f"phase is {error.phase!r}")
        if error.provider != h.provider:
            problems.append(f"provider is {error.provider!r}")
        problem = expected.check(error)
        if problem:
            problems.append(problem)
        counts = dict(expected.counts)
        if scenario == "server_error" and h.spec.capabilities.idempotency_key:
            counts.pop("submit")
        problems.extend(_count_problems(before, after, counts))
        _fail(title, problems)

    @pytest.mark.parametrize("mode", MODES)
    def test_secret_never_leaks(
        self,
        tarash_harness: Harness,
        mode: str,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        h = tarash_harness
        caplog.set_level(logging.DEBUG)
        modality = h.primary_modality()
        updates: list[Any] = []
        response = h.generate(modality, h.config(modality), mode, updates.append)
        surfaces = _checks.response_surfaces(response, updates)
        for scenario, expected in SCENARIOS.items():
            config = (
                None if expected.lifecycle_only and not h.lifecycle else h.make_config(modality, scenario)
            )
            if config is None:
                continue
            config = attrs.evolve(config, api_key=h.api_key, timeout=self.fault_deadline_seconds)
            try:
                h.generate(modality, config, mode)
            except Exception as exc:
                surfaces.extend(
                    (f"{scenario}: {where}", text) for where, text in _checks.exception_surfaces(exc)
                )
        captured = capsys.readouterr()
        surfaces += [
            ("log records (DEBUG)", caplog.text),
            ("stdout", captured.out),
            ("stderr", captured.err),
        ]
        _fail(
            "the API key leaked (run with a distinctive key and DEBUG logging)",
            _checks.leaks(h.api_key, surfaces),
        )

    # -- cancel and job handles ----------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_deadline_cancels_the_job_once(self, tarash_harness: Harness, mode: str) -> None:
        h = tarash_harness
        h.require_lifecycle("cancelling on deadline")
        if not h.spec.capabilities.cancel:
            pytest.skip(f"{h.provider} does not claim Capabilities.cancel")
        modality = h.primary_modality()
        config = h.config(modality, "slow", timeout=self.cancel_deadline_seconds)
        before = h.counts()
        with pytest.raises(TimeoutError) as raised:
            h.generate(modality, config, mode)
        attempt = raised.value.attempts[-1]
        problems = []
        if attempt.cancel_status != "cancelled":
            problems.append(
                f"core's cancel outcome is {attempt.cancel_status!r} ({attempt.cancel_error or 'no error'})"
            )
        problems.extend(_count_problems(before, h.counts(), {"cancel": 1}))
        _fail(
            f"{h.provider} claims Capabilities.cancel but the timed-out job was not cancelled "
            "exactly once at the provider",
            problems,
        )

    def test_submitted_job_data_is_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        with _submitted_job(h) as (_config, submitted):
            _fail(
                "SubmittedJob.data must be JSON-safe and secret-free",
                _checks.json_problems(dict(submitted.data), secret=h.api_key, what="SubmittedJob.data"),
            )

    def test_job_resumes_from_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        h.require_lifecycle("resuming a job from its JobRef")
        if not h.spec.capabilities.resume:
            pytest.skip(f"{h.provider} declares Capabilities(resume=False)")
        modality = h.primary_modality()
        with _submitted_job(h) as (config, submitted):
            ref = JobRef(
                provider=h.provider,
                model=config.model,
                modality=modality,  # type: ignore[arg-type]
                job_id=submitted.job_id,
                data=dict(submitted.data),
            )
            _fail(
                "SubmittedJob.data must be JSON-safe and secret-free",
                _checks.json_problems(dict(submitted.data), secret=h.api_key, what="SubmittedJob.data"),
            )
            blob = json.dumps({**attrs.asdict(ref), "submitted_at": ref.submitted_at.isoformat()})
            loaded = json.loads(blob)
            resumed = JobRef(**{**loaded, "submitted_at": datetime.fromisoformat(loaded["submitted_at"])})
            deadline = time.monotonic() + self.fault_deadline_seconds * 3
            while True:
                status = h.call_hook("status", modality=modality, config=config, job=resumed)
                if not isinstance(status, JobStatus):
                    pytest.fail(
                        f"status of a JobRef rebuilt from JSON returned "
                        f"{type(status).__name__}, expected JobStatus",
                        pytrace=False,
                    )
                if status.state in TERMINAL or time.monotonic() > deadline:
                    break
                time.sleep(config.poll_interval)
            assert status.state == "completed", f"the resumed job ended {status.state!r}"
            response = h.call_hook("result", modality=modality, config=config, job=resumed)
            problems = _checks.response_problems(
                attrs.evolve(response, provider=h.provider), modality=modality, provider=h.provider
            )
            problems = [p for p in problems if "execution_metadata" not in p]
            if getattr(response, "request_id", None) != submitted.job_id:
                problems.append(
                    f"result's request_id is {getattr(response, 'request_id', None)!r}, "
                    f"expected the job id {submitted.job_id!r}"
                )
            _fail("a job resumed from a JSON round trip of its JobRef cannot be finished", problems)
