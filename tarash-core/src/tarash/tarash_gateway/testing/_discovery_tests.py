"""The conformance kit's discovery tests: the plugin's entry point is registered and resolves its
provider, ``import tarash.tarash_gateway`` does not import it, its entry module imports nothing
heavy (each probed in a fresh interpreter), and its hooks match the capabilities it declares.
:class:`~tarash.tarash_gateway.testing.ProviderConformanceTests` inherits them.
"""

from __future__ import annotations

from collections.abc import Collection

import pytest

from ._harness import Harness, fail, probe

__all__ = ["DiscoveryTests"]


class DiscoveryTests:
    """What the kit checks of a plugin before generating anything (a mixin of the suite)."""

    def test_entry_point_is_registered(
        self, provider_name: str, allowed_entry_imports: Collection[str]
    ) -> None:
        report = probe(provider_name, allowed_entry_imports)
        found = report["entry_points"]
        if len(found) != 1:
            pytest.fail(
                f"expected one entry point named {provider_name!r} in the 'tarash' group, "
                f"found {found}: declare [project.entry-points.tarash] "
                f'{provider_name} = "your_package._plugin" and reinstall',
                pytrace=False,
            )
        fail(
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
        report = probe(provider_name, allowed_entry_imports)
        if "imported_by_core" not in report:
            pytest.skip("no single entry point (see test_entry_point_is_registered)")
        fail(
            "`import tarash.tarash_gateway` imported the plugin; discovery must be lazy",
            [f"{name} was imported" for name in report["imported_by_core"]],
        )

    def test_entry_module_imports_are_light(
        self, provider_name: str, allowed_entry_imports: Collection[str]
    ) -> None:
        report = probe(provider_name, allowed_entry_imports)
        if "heavy" not in report:
            pytest.skip("no single entry point (see test_entry_point_is_registered)")
        fail(
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
        fail(f"{h.provider}'s hooks do not match its ProviderSpec", problems)
