"""Fast entry-point discovery for one group.

``importlib.metadata.entry_points()`` imports a dozen modules and parses every installed
distribution's metadata; discovery only needs the ``[tarash]`` section of ``entry_points.txt``.
This scans ``sys.path`` for ``*.dist-info`` / ``*.egg-info`` folders, reads just that file (and the
name/version headers of the plugins that have one), and dedupes by normalised distribution name,
first on ``sys.path`` winning, as ``importlib.metadata`` does.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "EntryPoint",
    "entry_points",
]

_NORMALIZE = re.compile(r"[-_.]+")


class EntryPoint(NamedTuple):
    name: str
    value: str
    distribution: str | None
    version: str | None

    def load(self) -> Any:
        module_name, _, attribute = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            target = getattr(target, part)
        return target


def _sections(text: str, group: str) -> Iterator[tuple[str, str]]:
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current == group and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


def _headers(folder: str) -> tuple[str | None, str | None]:
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8", errors="replace") as handle:
                name = version = None
                for line in handle:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    if key == "Name":
                        name = value.strip()
                    elif key == "Version":
                        version = value.strip()
                return name, version
        except OSError:
            continue
    return None, None


def entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` from the distributions on ``path`` (default ``sys.path``)."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for base in sys.path if path is None else path:
        try:
            with os.scandir(base or ".") as scan:
                entries = sorted(
                    (e for e in scan if e.name.endswith((".dist-info", ".egg-info"))), key=lambda e: e.name
                )
        except OSError:
            continue
        for entry in entries:
            stem = entry.name.rsplit(".", 1)[0]
            key = _NORMALIZE.sub("-", stem.split("-", 1)[0]).lower()
            if key in seen:
                continue
            seen.add(key)
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            pairs = list(_sections(text, group))
            if not pairs:
                continue
            dist, version = _headers(entry.path)
            found.extend(EntryPoint(name, value, dist, version) for name, value in pairs)
    return found
