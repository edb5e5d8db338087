"""A plugin whose ``async_lifecycle`` or ``resolve_api_key`` hook raises is a broken plugin,
isolated like the others.

Listing providers must keep working for every provider, a generation through the broken one must
fail with a typed, retryable error (nothing was sent to it), so its fallback runs, and
``TARASH_STRICT_PLUGINS`` turns it into :class:`PluginLoadError`, as for a plugin failing to load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.exceptions import GenerationFailedError, MissingCredentialsError, PluginLoadError
from tarash.tarash_gateway.models import MockConfig, VideoGenerationConfig, VideoGenerationRequest
from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

MESSAGE = (
    "The async_lifecycle hook of provider 'hatchboom' raised RuntimeError: vendor SDK missing; "
    "nothing was sent to the provider"
)


class BrokenHatchPlugin:
    """A provider driven through the escape hatch whose hook raises (a vendor SDK that fails to load)."""

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="hatchboom", modalities={"video"})]

    @hookimpl
    def async_lifecycle(self, provider: str) -> Any:
        raise RuntimeError("vendor SDK missing")


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.delenv("TARASH_STRICT_PLUGINS", raising=False)
    made = Gateway(discover=False, ledger="off")
    made.register_plugin(BrokenHatchPlugin(), "hatchboom")
    yield made
    made.close()


def hatchboom(**fields: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="hatchboom", model="m", **fields)


def test_listing_providers_survives_the_broken_hook_and_reports_it_once(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """The broken provider stays listed (driven through the lifecycle path, where its jobs fail);
    the failure is logged once, like a plugin that fails to load, not on every lookup."""
    with caplog.at_level(logging.WARNING, logger="tarash.plugins"):
        first = [(p.name, p.lifecycle) for p in gateway.list_providers()]
        again = [(p.name, p.lifecycle) for p in gateway.list_providers()]
    assert first == again == [("hatchboom", True), ("mock", True)]
    assert [r.getMessage() for r in caplog.records] == [
        "Tarash plugin 'hatchboom' (? ?) is broken for provider 'hatchboom': "
        "async_lifecycle failed: RuntimeError: vendor SDK missing"
    ]


def test_a_generation_through_it_fails_with_a_typed_retryable_error(gateway: Gateway) -> None:
    with pytest.raises(GenerationFailedError) as raised:
        gateway.generate_video(hatchboom(), VideoGenerationRequest(prompt="a cat"))
    error = raised.value
    assert type(error) is GenerationFailedError
    assert (error.message, error.provider, error.model, error.phase, error.retryable) == (
        MESSAGE,
        "hatchboom",
        "m",
        "submit",
        True,
    )
    assert type(error.__cause__) is RuntimeError and str(error.__cause__) == "vendor SDK missing"
    assert [(a.provider, a.status, a.error_type, a.phase) for a in error.attempts] == [
        ("hatchboom", "failed", "GenerationFailedError", "submit")
    ]


def test_its_fallback_to_another_provider_runs(gateway: Gateway) -> None:
    fallback = VideoGenerationConfig(
        provider="mock", model="mock-video", mock=MockConfig(polling={"delay_between_updates": 0})
    )
    response = gateway.generate_video(
        hatchboom(fallback_configs=[fallback]), VideoGenerationRequest(prompt="a cat")
    )
    assert (response.provider, response.is_mock) == ("mock", True)
    metadata = response.execution_metadata
    assert metadata is not None
    assert (metadata.total_attempts, metadata.successful_attempt, metadata.fallback_triggered) == (2, 2, True)
    assert [
        (a.provider, a.status, a.error_type, a.error_message, a.is_retryable) for a in metadata.attempts
    ] == [
        ("hatchboom", "failed", "GenerationFailedError", f"{MESSAGE} (provider=hatchboom, model=m)", True),
        ("mock", "success", None, None, None),
    ]


def test_strict_mode_raises_plugin_load_error(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """``TARASH_STRICT_PLUGINS=1`` surfaces a broken plugin at once, as it does one failing to load."""
    monkeypatch.setenv("TARASH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError) as raised:
        gateway.list_providers()
    error = raised.value
    assert type(error) is PluginLoadError
    assert (error.plugin, error.distribution, error.version, error.message) == (
        "hatchboom",
        None,
        None,
        "Tarash plugin 'hatchboom' failed to load: async_lifecycle failed: RuntimeError: vendor SDK missing",
    )
    assert type(error.__cause__) is RuntimeError


class BrokenKeyPlugin:
    """A provider whose ``resolve_api_key`` hook raises (a credentials file it cannot parse)."""

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="keyboom", modalities={"video"}, api_key_env="KEYBOOM_KEY")]

    @hookimpl
    def resolve_api_key(self, provider: str) -> str | None:
        raise ValueError("credentials file is not JSON")

    @hookimpl
    def generate_video(self, config: Any, request: Any, context: Any) -> Any:
        raise AssertionError("never called without a key")


def test_a_raising_resolve_api_key_hook_is_a_missing_key_and_the_fallback_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The hook found no key: the attempt is skipped as MissingCredentialsError (its cause the
    hook's error, logged), and the next config of the chain runs, as for any missing key."""
    monkeypatch.delenv("KEYBOOM_KEY", raising=False)
    with Gateway(discover=False, ledger="off") as gateway:
        gateway.register_plugin(BrokenKeyPlugin(), "keyboom")
        config = VideoGenerationConfig(provider="keyboom", model="m")
        with pytest.raises(MissingCredentialsError) as raised, caplog.at_level(logging.WARNING, "tarash"):
            gateway.generate_video(config, VideoGenerationRequest(prompt="a cat"))
        logged = [r.getMessage() for r in caplog.records]
        fallback = attrs.evolve(config, fallback_configs=[VideoGenerationConfig(provider="mock", model="m")])
        response = gateway.generate_video(fallback, VideoGenerationRequest(prompt="a cat"))
    assert raised.value.provider == "keyboom"
    assert type(raised.value.__cause__) is ValueError
    assert logged == [
        "The keyboom plugin's resolve_api_key hook raised ValueError: credentials file is not JSON; "
        "no key found"
    ]
    assert response.provider == "mock"
    assert response.execution_metadata is not None
    assert [(a.provider, a.status, a.error_type) for a in response.execution_metadata.attempts] == [
        ("keyboom", "skipped", "MissingCredentialsError"),
        ("mock", "success", None),
    ]
