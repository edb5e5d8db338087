"""Regenerate tarash-core's bundled price table (``tarash/tarash_gateway/data/prices.json``).

One entry per model family of every installed plugin's built-in table (plus the extra endpoints
listed in ``scripts/price_sources.json``), in the unit the plugin's pricing rule bills. A price (or
a price per variant) is written only where ``price_sources.json`` has one read from a published
page, named by URL in the entry's ``source`` with its date (``as_of``) and a ``note``; every other
entry has ``"price": null`` and ``"source": "unsourced"``: Tarash then reports its cost as unknown
(None) rather than guess, until the provider's price API or a user override gives one.

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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tarash-core/src/tarash/tarash_gateway/data/prices.json"
#: The sourced prices: one entry per (provider, model) with ``unit``, ``price``, ``variants``,
#: ``source`` (the URL the figure was read from), ``as_of`` (the date of that page, else the date
#: it was read) and ``note`` (what the page says, how the figure was chosen).
SOURCES = ROOT / "scripts/price_sources.json"


def _sourced() -> dict[tuple[str, str], dict[str, Any]]:
    entries = json.loads(SOURCES.read_text(encoding="utf-8"))["prices"]
    return {
        (e["provider"], e["model"]): {k: v for k, v in e.items() if k not in ("provider", "model")}
        for e in entries
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
    for (provider, model), figures in _sourced().items():
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
    sourced = sum(1 for e in entries if e["source"] != "unsourced")
    print(f"{OUT}: {len(entries)} entries, {sourced} with a sourced price", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
