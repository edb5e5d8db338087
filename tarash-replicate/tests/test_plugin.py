"""Discovery: the entry point, a cheap entry module, the registered spec and its tables."""

from __future__ import annotations

import json
import subprocess
import sys

from tarash.tarash_gateway.plugin import Lazy
from tarash_replicate import API_KEY_ENV, DEFAULT_BASE_URL, PROVIDER
from tarash_replicate._spec import SPEC


def test_the_spec() -> None:
    assert (SPEC.name, SPEC.api_key_env, SPEC.base_url) == (PROVIDER, API_KEY_ENV, DEFAULT_BASE_URL)
    assert (SPEC.name, SPEC.api_key_env) == ("replicate", "REPLICATE_API_TOKEN")
    assert (SPEC.auth_header, SPEC.auth_scheme) == ("Authorization", "Bearer")
    assert SPEC.modalities == {"video", "image"}
    caps = SPEC.capabilities
    assert (caps.cancel, caps.progress_percent, caps.logs, caps.webhooks) == (True, True, True, True)
    assert (caps.idempotency_key, caps.queue_position) == (False, False)
    assert isinstance(SPEC.models, Lazy) and isinstance(SPEC.field_mappings, Lazy)


def test_the_tables_list_every_family_with_its_allowed_values() -> None:
    families = {family.prefix: family for family in SPEC.models}
    assert len(families) == 24
    assert families["google/veo-3"].allowed["duration_seconds"] == (4, 6, 8)
    assert families["minimax/hailuo-02"].allowed["resolution"] == ("512p", "768p", "1080p")
    assert families["black-forest-labs/flux-schnell"].allowed["n"] == (1, 2, 3, 4)
    assert {f.modality for f in families.values() if f.prefix.startswith("google/imagen")} == {"image"}
    assert set(SPEC.field_mappings) == set(families)


def test_discovery_imports_neither_the_flows_nor_the_tables() -> None:
    code = (
        "import json, sys\n"
        "from tarash.tarash_gateway import list_providers\n"
        "list_providers()\n"
        "names = ('tarash_replicate', 'standardwebhooks')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(names))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "tarash_replicate._plugin" in loaded
    assert not {"tarash_replicate._flows", "tarash_replicate._families", "standardwebhooks"} & set(loaded)
