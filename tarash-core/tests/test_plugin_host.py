"""The plugin host: lazy discovery through real entry points, isolation, strict mode, conflicts.

Distributions are made on disk as ``*.dist-info`` folders (metadata + entry_points.txt) next to
their modules, so ``importlib.metadata`` discovers them exactly as it discovers installed wheels.
The cross-distribution tests in the repository's top-level ``tests/`` do the same with built
wheels installed into a fresh virtualenv.
"""

from __future__ import annotations

import ast
import importlib
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tarash.tarash_gateway import (
    generate_video,
    get_provider_field_mapping,
    list_plugins,
    list_providers,
    register_provider_field_mapping,
)
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.exceptions import (
    PluginLoadError,
    ProviderConflictError,
    ProviderNotFoundError,
)
from tarash.tarash_gateway.field_mappers import FieldMapper, match_model_prefix
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

GOOD_PLUGIN = """
from tarash.tarash_gateway.models import VideoGenerationResponse
from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

@hookimpl
def register_providers():
    return [ProviderSpec(name="{provider}", modalities={{"video"}})]

@hookimpl
def generate_video(config, request, context):
    return VideoGenerationResponse(request_id="r-{provider}", video="https://cdn.test/{provider}.mp4")
"""

MakeDist = Callable[..., None]


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeDist]:
    """Create a discoverable distribution: ``make_dist(name, version, {ep: module}, {module: src})``."""
    created: list[str] = []

    def make(name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{ep} = {module}" for ep, module in entry_points.items())
        (info / "entry_points.txt").write_text(f"[tarash]\n{lines}\n")
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)

    monkeypatch.syspath_prepend(str(tmp_path))
    HOST.reset(search_path=[str(tmp_path)])
    yield make
    HOST.reset()
    for module in created:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


def test_discovery_is_lazy_and_records_distribution(make_dist: MakeDist) -> None:
    make_dist(
        "tarash-good", "1.2.3", {"good": "good_plugin"}, {"good_plugin": GOOD_PLUGIN.format(provider="good")}
    )
    assert "good_plugin" not in sys.modules
    providers = {p.name: p for p in list_providers()}
    assert "good_plugin" in sys.modules
    assert providers["good"].distribution == "tarash-good"
    assert providers["good"].version == "1.2.3"
    assert providers["good"].lifecycle is False
    response = generate_video(
        VideoGenerationConfig(provider="good", model="m"), VideoGenerationRequest(prompt="x")
    )
    assert response.video == "https://cdn.test/good.mp4"


def test_broken_plugins_are_reported_and_others_keep_working(
    make_dist: MakeDist,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("TARASH_STRICT_PLUGINS", raising=False)
    make_dist(
        "tarash-good", "1.0", {"good": "good_plugin"}, {"good_plugin": GOOD_PLUGIN.format(provider="good")}
    )
    make_dist(
        "tarash-crash",
        "0.1",
        {"crash": "crash_plugin"},
        {"crash_plugin": "raise RuntimeError('boom at import')\n"},
    )
    make_dist(
        "tarash-badreg",
        "0.2",
        {"badreg": "badreg_plugin"},
        {
            "badreg_plugin": """
        from tarash.tarash_gateway.plugin import hookimpl

        @hookimpl
        def register_providers():
            raise ValueError("cannot register")
    """
        },
    )
    make_dist(
        "tarash-wrongtype",
        "0.3",
        {"wrongtype": "wrongtype_plugin"},
        {
            "wrongtype_plugin": """
        from tarash.tarash_gateway.plugin import hookimpl

        @hookimpl
        def register_providers():
            return {"name": "wrongtype"}
    """
        },
    )
    with caplog.at_level(logging.WARNING, logger="tarash.plugins"):
        plugins = {p.name: p for p in list_plugins()}
        list_plugins()
    assert plugins["good"].status == "loaded" and plugins["good"].providers == ("good",)
    assert (plugins["crash"].status, plugins["crash"].distribution, plugins["crash"].version) == (
        "failed",
        "tarash-crash",
        "0.1",
    )
    assert plugins["crash"].error == "import failed: RuntimeError: boom at import"
    assert plugins["badreg"].error == "registration failed: ValueError: cannot register"
    assert plugins["wrongtype"].error == (
        "registration failed: TypeError: register_providers must return a list of ProviderSpec, got dict"
    )
    assert len([r for r in caplog.records if "is broken" in r.getMessage()]) == 3
    assert (
        generate_video(
            VideoGenerationConfig(provider="good", model="m"), VideoGenerationRequest(prompt="x")
        ).request_id
        == "r-good"
    )
    with pytest.raises(ProviderNotFoundError) as raised:
        generate_video(VideoGenerationConfig(provider="crash", model="m"), VideoGenerationRequest(prompt="x"))
    assert raised.value.installed == ("good", "mock")
    assert "Installed providers: good, mock" in str(raised.value)


def test_strict_mode_raises_on_a_broken_plugin(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_STRICT_PLUGINS", "1")
    make_dist(
        "tarash-crash",
        "0.1",
        {"crash": "crash_plugin"},
        {"crash_plugin": "raise RuntimeError('boom at import')\n"},
    )
    with pytest.raises(PluginLoadError) as raised:
        list_providers()
    assert (raised.value.plugin, raised.value.distribution, raised.value.version) == (
        "crash",
        "tarash-crash",
        "0.1",
    )


def test_two_distributions_claiming_one_name(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARASH_STRICT_PLUGINS", raising=False)
    make_dist("tarash-one", "1.0", {"dup": "dup_one"}, {"dup_one": GOOD_PLUGIN.format(provider="dup")})
    make_dist("tarash-two", "2.0", {"dup": "dup_two"}, {"dup_two": GOOD_PLUGIN.format(provider="dup")})
    with pytest.raises(ProviderConflictError) as raised:
        generate_video(VideoGenerationConfig(provider="dup", model="m"), VideoGenerationRequest(prompt="x"))
    assert raised.value.claimants == ("tarash-one 1.0", "tarash-two 2.0")
    assert "claimed by several plugins: tarash-one 1.0, tarash-two 2.0" in str(raised.value)
    assert {p.name: p.status for p in list_plugins() if p.source == "entry-point"} == {"dup": "conflict"}


def test_strict_mode_raises_on_a_conflict(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_STRICT_PLUGINS", "1")
    make_dist("tarash-one", "1.0", {"dup": "dup_one"}, {"dup_one": GOOD_PLUGIN.format(provider="dup")})
    make_dist("tarash-two", "2.0", {"dup": "dup_two"}, {"dup_two": GOOD_PLUGIN.format(provider="dup")})
    with pytest.raises(ProviderConflictError):
        list_providers()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TARASH_PLUGINS", "alpha", {"alpha": "loaded", "beta": "disabled"}),
        ("TARASH_PLUGINS", "", {"alpha": "disabled", "beta": "disabled"}),
        ("TARASH_DISABLE_PLUGINS", "beta", {"alpha": "loaded", "beta": "disabled"}),
        ("TARASH_DISABLE_PLUGINS", "tarash-alpha", {"alpha": "disabled", "beta": "loaded"}),
    ],
)
def test_allow_and_deny_lists(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: dict[str, str]
) -> None:
    monkeypatch.setenv(variable, value)
    make_dist(
        "tarash-alpha",
        "1.0",
        {"alpha": "alpha_plugin"},
        {"alpha_plugin": GOOD_PLUGIN.format(provider="alpha")},
    )
    make_dist(
        "tarash-beta", "1.0", {"beta": "beta_plugin"}, {"beta_plugin": GOOD_PLUGIN.format(provider="beta")}
    )
    assert {p.name: p.status for p in list_plugins() if p.source == "entry-point"} == expected
    assert "beta_plugin" not in sys.modules or expected["beta"] == "loaded"


def test_disable_all_plugins_keeps_the_builtin_mock(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARASH_DISABLE_PLUGINS", "1")
    make_dist(
        "tarash-alpha",
        "1.0",
        {"alpha": "alpha_plugin"},
        {"alpha_plugin": GOOD_PLUGIN.format(provider="alpha")},
    )
    assert [p.name for p in list_providers()] == ["mock"]


def test_field_mappings_for_installed_providers(make_dist: MakeDist) -> None:
    make_dist(
        "tarash-good", "1.0", {"good": "good_plugin"}, {"good_plugin": GOOD_PLUGIN.format(provider="good")}
    )
    mapper = FieldMapper("prompt")
    register_provider_field_mapping("good", {"acme/video": {"text": mapper}})
    register_provider_field_mapping("good", {"acme/video/pro": {"prompt_text": mapper}})
    table = get_provider_field_mapping("good")
    assert table == {"acme/video": {"text": mapper}, "acme/video/pro": {"prompt_text": mapper}}
    assert HOST.resolve_field_mappers("good", "acme/video/pro/v2") == (
        "acme/video/pro",
        {"prompt_text": mapper},
    )
    assert HOST.resolve_field_mappers("good", "acme/videos") == (None, None)
    assert get_provider_field_mapping("nobody") is None
    # what is worked out once is kept, but a later registration is seen, and a caller's change
    # to the table it was given is its own
    other = FieldMapper("duration_seconds")
    register_provider_field_mapping("good", {"acme/videos": {"seconds": other}})
    assert HOST.resolve_field_mappers("good", "acme/videos") == ("acme/videos", {"seconds": other})
    (get_provider_field_mapping("good") or {}).clear()
    assert HOST.resolve_field_mappers("good", "acme/videos/hd") == ("acme/videos", {"seconds": other})
    assert HOST.resolve_field_mappers("good", "acme/video/pro/v2") == (
        "acme/video/pro",
        {"prompt_text": mapper},
    )
    assert sorted(get_provider_field_mapping("good") or {}) == ["acme/video", "acme/video/pro", "acme/videos"]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("fal-ai/veo3.1", "fal-ai/veo3.1"),
        ("fal-ai/veo3.1/fast/image-to-video", "fal-ai/veo3.1"),
        ("fal-ai/veo3.10", None),
        ("fal-ai/kling-video/o3", "fal-ai/kling-video/o3/"),
        ("fal-ai/minimax-music", None),
        ("fal-ai/minimax/hailuo-02", "fal-ai/minimax"),
    ],
)
def test_prefix_matching_is_by_path_segment(model: str, expected: str | None) -> None:
    prefixes = ["fal-ai/veo3.1", "fal-ai/kling-video/o3/", "fal-ai/minimax", "fal-ai"]
    found = match_model_prefix(model, [p for p in prefixes if p != "fal-ai"])
    assert found == expected


def _imported_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"import sys\n{code}\nprint(repr(sorted(m for m in {modules!r} if m in sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(ast.literal_eval(output.stdout.strip()))


def test_importing_the_package_imports_no_plugin_machinery() -> None:
    heavy = ("pluggy", "httpx", "cattrs", "tarash.tarash_gateway._plugins", "tarash.tarash_gateway.mock")
    assert _imported_by("import tarash.tarash_gateway", heavy) == []


def test_discovery_builds_no_lifecycle_machinery() -> None:
    code = (
        "import tarash.tarash_gateway as t\n"
        "names = [p.name for p in t.list_providers()]\n"
        "assert 'mock' in names, names"
    )
    lifecycle = (
        "httpx",
        "cattrs",
        "asyncio",
        "tarash.tarash_gateway._records",
        "tarash.tarash_gateway._lost_submissions",
        "tarash.tarash_gateway._engine",
        "tarash.tarash_gateway._job_flows",
        "tarash.tarash_gateway._ledger",
        "tarash.tarash_gateway._converters",
        "tarash.tarash_gateway._codec",
    )
    assert _imported_by(code, lifecycle) == []


def test_lifecycle_records_load_on_first_lookup() -> None:
    code = (
        "import sys, tarash.tarash_gateway.plugin as p; before = 'tarash.tarash_gateway._records' in "
        "sys.modules; from tarash.tarash_gateway.plugin import JobStatus; "
        "print(before, JobStatus(state='queued').state, p.JobStatus is JobStatus)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False queued True"


def test_unknown_plugin_attribute_is_an_attribute_error() -> None:
    from tarash.tarash_gateway import plugin

    with pytest.raises(AttributeError, match="has no attribute 'JobStatuses'"):
        plugin.JobStatuses  # noqa: B018
    assert set(plugin.__all__) <= set(dir(plugin))
