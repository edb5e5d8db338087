"""``tarash plugins``, ``tarash providers`` and ``tarash models PROVIDER``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import attrs

from .._api import get_provider, list_plugins, list_providers
from .._plugins import ProviderInfo
from .._redact import redact_text
from ._parser import EXIT_OK

__all__ = [
    "models",
    "plugins",
    "providers",
    "table",
]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, without trailing spaces."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def _or_dash(value: str | None) -> str:
    return value if value else "-"


def plugins(args: argparse.Namespace) -> int:
    """Every plugin with distribution, version, providers, status and why a broken one failed."""
    infos = list_plugins()
    if args.json_output:
        _print_json(
            [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "status": p.status,
                    "providers": list(p.providers),
                    "source": p.source,
                    "error": redact_text(p.error) if p.error else None,
                }
                for p in infos
            ]
        )
        return EXIT_OK
    headers = ("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDERS", "SOURCE")
    rows = [
        (
            p.name,
            _or_dash(p.distribution),
            _or_dash(p.version),
            p.status,
            _or_dash(", ".join(p.providers)),
            p.source,
        )
        for p in infos
    ]
    lines = table(headers, rows)
    print(lines[0])
    for info, line in zip(infos, lines[1:], strict=True):
        print(line)
        if info.error:
            print(f"    error: {' '.join(redact_text(info.error).split())}")
    return EXIT_OK


def _provider_json(info: ProviderInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "modalities": sorted(info.modalities),
        "description": info.spec.description,
        "api_key_env": info.spec.api_key_env,
        "capabilities": attrs.asdict(info.spec.capabilities),
        "plugin": info.plugin,
        "distribution": info.distribution,
        "version": info.version,
        "source": info.source,
        "lifecycle": info.lifecycle,
    }


def providers(args: argparse.Namespace) -> int:
    """Every usable provider, the plugin providing it and the env var holding its key."""
    infos = list_providers()
    if args.json_output:
        _print_json([_provider_json(info) for info in infos])
        return EXIT_OK
    headers = ("PROVIDER", "MODALITIES", "PLUGIN", "API KEY ENV", "DESCRIPTION")
    rows = [
        (i.name, ",".join(sorted(i.modalities)), i.plugin, _or_dash(i.spec.api_key_env), i.spec.description)
        for i in infos
    ]
    for line in table(headers, rows):
        print(line)
    return EXIT_OK


def models(args: argparse.Namespace) -> int:
    """The provider's model families, each followed by its allowed values."""
    info = get_provider(args.provider)
    families = info.spec.models
    if args.json_output:
        _print_json(
            {
                "provider": info.name,
                "models": [
                    {
                        "prefix": m.prefix,
                        "modality": m.modality,
                        "name": m.name,
                        "description": m.description,
                        "allowed": {field: list(values) for field, values in m.allowed.items()},
                    }
                    for m in families
                ],
            }
        )
        return EXIT_OK
    if not families:
        print(f"Provider {info.name!r} declares no model families; pass any model id with --model.")
        return EXIT_OK
    headers = ("MODEL", "MODALITY", "NAME", "DESCRIPTION")
    lines = table(headers, [(m.prefix, m.modality, m.name, m.description) for m in families])
    print(lines[0])
    for family, line in zip(families, lines[1:], strict=True):
        print(line)
        for field, values in family.allowed.items():
            print(f"    {field}: {', '.join(map(str, values))}")
    return EXIT_OK
