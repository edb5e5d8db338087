"""The conformance kit applied to every planted provider, exactly as a plugin's tests apply it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
from kitplanted.service import counts, make_config_factory

from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests

pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]


class PlantedConformance(ProviderConformanceTests):
    name: ClassVar[str]
    cancel_deadline_seconds = 0.5

    @pytest.fixture
    def provider_name(self) -> str:
        return self.name

    @pytest.fixture
    def make_config(self) -> ConfigFactory:
        return make_config_factory(self.name)

    @pytest.fixture
    def server_counts(self) -> Callable[[], dict[str, int]]:
        return lambda: counts(self.name)


class TestKitgood(PlantedConformance):
    name = "kitgood"


class TestKitvideo(PlantedConformance):
    name = "kitvideo"


class TestKitleakerror(PlantedConformance):
    name = "kitleakerror"


class TestKitleaklog(PlantedConformance):
    name = "kitleaklog"


class TestKitstatusdict(PlantedConformance):
    name = "kitstatusdict"


class TestKitfakecancel(PlantedConformance):
    name = "kitfakecancel"


class TestKitoutoforder(PlantedConformance):
    name = "kitoutoforder"


class TestKitwrongtypes(PlantedConformance):
    name = "kitwrongtypes"


class TestKitnotjson(PlantedConformance):
    name = "kitnotjson"


class TestKitsecretjob(PlantedConformance):
    name = "kitsecretjob"


class TestKitheavy(PlantedConformance):
    name = "kitheavy"


class TestKitundeclared(PlantedConformance):
    """make_config offers images although the provider declares video only."""

    name = "kitundeclared"

    @pytest.fixture
    def make_config(self) -> ConfigFactory:
        return make_config_factory(self.name, modalities=("video", "image"))


class TestKitoverclaims(PlantedConformance):
    name = "kitoverclaims"


class TestKitbadmapping(PlantedConformance):
    name = "kitbadmapping"


class TestKitnocancelhook(PlantedConformance):
    name = "kitnocancelhook"


class TestKitblocking(PlantedConformance):
    """A conforming blocking provider (generate_video/generate_image, no submit)."""

    name = "kitblocking"


class TestKitblockingretry(PlantedConformance):
    name = "kitblockingretry"


class TestKitownhttp(PlantedConformance):
    name = "kitownhttp"


class TestKitswallow(PlantedConformance):
    name = "kitswallow"


class TestKitkeyinrequest(PlantedConformance):
    name = "kitkeyinrequest"
