"""Entry-point probe: run in a fresh interpreter, so imports are observed from a clean start.

``python .../testing/_probe.py PROVIDER '["allowed", ...]'`` (run as a file, so that nothing but
the standard library is imported before the probe starts) prints one JSON report: the ``tarash``
entry points named PROVIDER, whether ``import tarash.tarash_gateway`` imported the plugin, which
non-standard modules loading the entry module imported (and from where), and how Tarash then
resolves the provider.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import FrameType
from typing import Any

__all__ = [
    "CORE_LIGHT",
    "ImportRecorder",
    "probe",
]

#: Light dependencies of tarash-core an entry module may import at import time.
CORE_LIGHT = frozenset({"attr", "attrs", "cattrs", "pluggy", "typing_extensions", "exceptiongroup"})


class ImportRecorder:
    """A meta-path finder that records first imports of top-level packages outside ``allowed``."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        self.heavy: list[dict[str, str]] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in self.allowed or top in sys.modules or any(h["module"] == top for h in self.heavy):
            return None
        frame = _importer_frame(sys._getframe(1))
        importer = str(frame.f_globals.get("__name__", "?")) if frame else "?"
        flagged = {h["module"] for h in self.heavy}
        # Core's own lazy imports are core's business; what a flagged package imports is its own.
        if not importer.startswith("tarash.") and importer.partition(".")[0] not in flagged:
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "?"
            self.heavy.append({"module": top, "importer": importer, "where": where})
        return None


def _importer_frame(frame: FrameType | None) -> FrameType | None:
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen")
        or str(frame.f_globals.get("__name__", "")).startswith("importlib")
    ):
        frame = frame.f_back
    return frame


def probe(name: str, extra_allowed: Sequence[str]) -> dict[str, Any]:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="tarash") if ep.name == name]
    report: dict[str, Any] = {"entry_points": [ep.value for ep in found]}
    if len(found) != 1:
        return report
    entry = found[0]
    module = entry.module
    own = module.partition(".")[0]
    # imported like an application, after the plugin's own module
    import tarash.tarash_gateway as gateway

    gateway.hookimpl  # noqa: B018 - touch the lazily imported public API like an application
    report["imported_by_core"] = sorted(m for m in sys.modules if m == own or m.startswith(own + "."))
    recorder = ImportRecorder(
        frozenset(sys.stdlib_module_names) | CORE_LIGHT | {"tarash", own} | set(extra_allowed)
    )
    sys.meta_path.insert(0, recorder)
    try:
        entry.load()
    except Exception as exc:
        report["load_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sys.meta_path.remove(recorder)
    report["heavy"] = recorder.heavy
    try:
        info = gateway.get_provider(name)
    except Exception as exc:
        report["provider_error"] = f"{type(exc).__name__}: {exc}"
    else:
        report["provider"] = {
            "plugin": info.plugin,
            "source": info.source,
            "distribution": info.distribution,
        }
    return report


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], json.loads(sys.argv[2]))))
