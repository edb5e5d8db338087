"""Regenerate tarash-core's bundled price table (``tarash/tarash_gateway/data/prices.json``).

One entry per model family of every installed plugin's built-in table (plus the extra endpoints
listed in ``SOURCED`` below), in the unit the plugin's pricing rule bills. A price is written only
where it was read from a source, named in the entry's ``source`` with the date it was read
(``as_of``); every other entry has ``"price": null`` and ``"source": "unsourced"``: Tarash then
reports its cost as unknown (None) rather than guess, until the provider's price API or a user
override gives one.

Run with every plugin of the monorepo installed (the user's saved fal models are left out: the
script points ``TARASH_HOME`` at an empty folder)::

    python scripts/make_price_table.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tarash-core/src/tarash/tarash_gateway/data/prices.json"
LITELLM = (
    "LiteLLM 1.110.2 model_prices_and_context_window_backup.json, key {key} "
    "(/work/shared/reference/fal-platform.md section 7)"
)
MOCK = "tarash: the mock provider is free"

#: (provider, model prefix) -> the sourced figures: unit, default price, variants, source, as_of.
SOURCED: dict[tuple[str, str], dict[str, Any]] = {
    ("mock", "mock"): {"unit": "second", "price": "0", "source": MOCK, "as_of": "2026-12-01"},
    ("mock", "mock-image"): {"unit": "image", "price": "0", "source": MOCK, "as_of": "2026-12-01"},
    ("fal", "fal-ai/flux/dev"): {
        "unit": "megapixel",
        "price": "0.025",
        "source": LITELLM.format(key="fal_ai/fal-ai/flux/dev")
        + ": output_cost_per_image 0.025, 'billed per megapixel, rounded up'",
        "as_of": "2026-11-30",
    },
    ("fal", "bytedance/seedance-2.0/text-to-video"): {
        "unit": "second",
        "price": "0.3034",
        "variants": {"480p": "0.1346", "1080p": "0.682", "4k": "1.5552"},
        "source": LITELLM.format(key="fal_ai/bytedance/seedance-2.0/text-to-video")
        + ": output_cost_per_second 0.3034, _480p 0.1346, _1080p 0.682, _4k 1.5552",
        "as_of": "2026-11-30",
    },
}


def _entries() -> list[dict[str, Any]]:
    from tarash.tarash_gateway._plugins import HOST
    from tarash.tarash_gateway._pricing import rule_for

    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for provider in HOST.providers():
        spec = HOST.entry_plugin(provider.name)[0]
        for family in spec.models:
            rule = rule_for(HOST, provider.name, family.prefix, family.modality)
            unit = rule.unit if rule is not None else ("second" if family.modality == "video" else "image")
            entries[(provider.name, family.prefix)] = {
                "provider": provider.name,
                "model": family.prefix,
                "unit": unit,
                "price": None,
                "currency": "USD",
                "source": "unsourced",
                "as_of": None,
            }
    for (provider, model), figures in SOURCED.items():
        entry = entries.setdefault(
            (provider, model), {"provider": provider, "model": model, "currency": "USD"}
        )
        entry.update(figures)
    return [entries[key] for key in sorted(entries)]


def main() -> int:
    os.environ["TARASH_HOME"] = tempfile.mkdtemp(prefix="tarash-prices-")
    entries = _entries()
    lines = ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in entries)
    text = '{"version": 1, "prices": [\n' + lines + "\n]}\n"
    OUT.write_text(text, encoding="utf-8")
    sourced = sum(1 for e in entries if e.get("price") is not None)
    print(f"{OUT}: {len(entries)} entries, {sourced} with a sourced price", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
