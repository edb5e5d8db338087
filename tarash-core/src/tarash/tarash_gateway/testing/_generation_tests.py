"""The conformance kit's generation tests: each declared modality generates a well-formed response
through the sync and the async API, every request the server receives was sent by core's transport,
a 5xx thrown into the plugin's flow reaches core, progress updates keep the progress contract, and
an undeclared modality raises ``UnsupportedModalityError``.
:class:`~tarash.tarash_gateway.testing.ProviderConformanceTests` inherits them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from ..exceptions import TarashException, UnsupportedModalityError
from ..models import ImageGenerationConfig, VideoGenerationConfig
from ..plugin import MODALITIES
from . import _checks
from ._harness import MODES, Harness, fail

__all__ = ["GenerationTests"]

#: What core's transport says when it refuses a request carrying the key (see ``_transport``).
KEY_REFUSED = "plugin put the API key into a request it described"


class GenerationTests:
    """What the kit checks of a generation that goes right (a mixin of the suite, whose
    ``fault_deadline_seconds`` bounds the 5xx test)."""

    fault_deadline_seconds: ClassVar[float]

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
        fail(
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
        fail(
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
