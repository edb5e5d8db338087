"""The provider conformance suite: :class:`ProviderConformanceTests`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection
from datetime import datetime
from typing import Any, ClassVar

import attrs
import pytest

from ..exceptions import TarashException, TimeoutError
from ..models import ImageGenerationRequest, VideoGenerationRequest
from ..plugin import JobRef, JobStatus
from . import _checks
from ._discovery_tests import DiscoveryTests
from ._generation_tests import GenerationTests
from ._harness import (
    MODES,
    ConfigFactory,
    CountsFn,
    Harness,
    count_problems,
    fail,
    kit_gateway,
    submitted_job,
)
from ._scenarios import SCENARIOS

__all__ = ["ProviderConformanceTests"]

PLUGIN = "tarash.tarash_gateway.testing.plugin"
TERMINAL = ("completed", "failed", "cancelled")


# pytest runs a class's inherited tests first, its last base first: discovery, generation, then the
# tests below (the cancel test's short deadline is not spent on a cold start).
class ProviderConformanceTests(GenerationTests, DiscoveryTests):
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
            fail(title, [f"got {type(error).__name__}: {error}"])
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
        problems.extend(count_problems(before, after, counts))
        fail(title, problems)

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
        fail(
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
        problems.extend(count_problems(before, h.counts(), {"cancel": 1}))
        fail(
            f"{h.provider} claims Capabilities.cancel but the timed-out job was not cancelled "
            "exactly once at the provider",
            problems,
        )

    def test_submitted_job_data_is_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        with submitted_job(h) as (_config, submitted):
            fail(
                "SubmittedJob.data must be JSON-safe and secret-free",
                _checks.json_problems(dict(submitted.data), secret=h.api_key, what="SubmittedJob.data"),
            )

    def test_job_resumes_from_json(self, tarash_harness: Harness) -> None:
        h = tarash_harness
        h.require_lifecycle("resuming a job from its JobRef")
        if not h.spec.capabilities.resume:
            pytest.skip(f"{h.provider} declares Capabilities(resume=False)")
        modality = h.primary_modality()
        with submitted_job(h) as (config, submitted):
            ref = JobRef(
                provider=h.provider,
                model=config.model,
                modality=modality,  # type: ignore[arg-type]
                job_id=submitted.job_id,
                data=dict(submitted.data),
            )
            fail(
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
            fail("a job resumed from a JSON round trip of its JobRef cannot be finished", problems)
