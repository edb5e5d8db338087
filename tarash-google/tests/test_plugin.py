"""Discovery: two entry points, one provider each, cheap entry modules, key resolution."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

from tarash_google import _plugin, _vertex_plugin


def test_one_entry_point_per_provider() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="tarash") if ep.value.startswith("tarash_google")}
    assert found == {"google": "tarash_google._plugin", "google-vertex": "tarash_google._vertex_plugin"}
    assert [spec.name for spec in _plugin.register_providers()] == ["google"]
    assert [spec.name for spec in _vertex_plugin.register_providers()] == ["google-vertex"]


def test_specs_declare_auth_and_cancel_per_api() -> None:
    (gemini,) = _plugin.register_providers()
    (vertex,) = _vertex_plugin.register_providers()
    assert (gemini.auth_header, gemini.auth_scheme, gemini.api_key_env) == (
        "x-goog-api-key",
        "",
        "GEMINI_API_KEY",
    )
    assert gemini.capabilities.cancel is False and not hasattr(_plugin, "cancel")
    assert vertex.api_key_env is None and vertex.capabilities.cancel is True
    assert gemini.base_url == "https://generativelanguage.googleapis.com"
    assert vertex.base_url == "https://aiplatform.googleapis.com"


def test_google_api_key_is_the_fallback_key() -> None:
    gemini = _plugin.register_providers()[0]
    assert (gemini.api_key_env, gemini.api_key_env_fallbacks) == ("GEMINI_API_KEY", ("GOOGLE_API_KEY",))


def test_entry_modules_import_no_flows_models_or_google_auth() -> None:
    code = (
        "import sys, tarash_google._plugin, tarash_google._vertex_plugin\n"
        "from tarash_google._specs import GEMINI_SPEC\n"
        "heavy = [m for m in ('tarash_google._flows', 'tarash_google._models', 'tarash_google._auth',"
        " 'google.auth', 'httpx', 'tarash.tarash_gateway._records', 'tarash.tarash_gateway._wire')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tarash_models_shows_deprecation_and_successor(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tarash.tarash_gateway.cli", "models", "google"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TARASH_HOME": str(tmp_path)},
    ).stdout
    row = next(line for line in out.splitlines() if line.startswith("veo-3.1-generate-preview "))
    assert row.endswith(
        "veo route on Gemini Developer API; DEPRECATED 2026-10-22, successor gemini-omni-1.2-flash"
    )
    assert "imagen-4.0-generate-001" not in out
    assert "    size: \n" not in out and "    size:\n" not in out
