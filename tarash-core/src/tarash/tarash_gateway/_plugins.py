"""The plugin host: lazy entry-point discovery, isolation of broken plugins, provider lookup.

Discovery happens on first use (never at ``import tarash.tarash_gateway``). Each entry point in
the ``tarash`` group is loaded and registered on its own: a plugin that raises on import, while
registering, or returns the wrong records is recorded as broken (logged once) and the others keep
working. Environment switches:

* ``TARASH_STRICT_PLUGINS=1``: a broken plugin raises :class:`PluginLoadError` instead.
* ``TARASH_PLUGINS=a,b``: load only these entry points (empty: none).
* ``TARASH_DISABLE_PLUGINS=1`` (or ``a,b``): load no entry points (or not these).
"""

from __future__ import annotations

import inspect
import os
import threading
import traceback
from collections.abc import Generator, Mapping
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._handlers import Direct, direct, done, handler_adapter
from ._redact import get_logger, register_secret
from .exceptions import (
    GenerationFailedError,
    PluginLoadError,
    ProviderConflictError,
    ProviderNotFoundError,
    UnsupportedModalityError,
    ValidationError,
)
from .field_mappers import FieldMapper, match_model_prefix
from .plugin import Capabilities, ProviderSpec

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "HOST",
    "LIFECYCLE",
    "PluginHost",
    "PluginInfo",
    "ProviderInfo",
]

log = get_logger("tarash.plugins")

ENTRY_POINT_GROUP = "tarash"
BUILTIN_PLUGINS = ("tarash.tarash_gateway.mock",)
#: Models whose field mappers :meth:`PluginHost.resolve_field_mappers` keeps before starting again.
RESOLVED_MAX = 1024


@attrs.frozen(kw_only=True)
class PluginInfo:
    """An installed (or built-in, or runtime-registered) plugin and how loading it went."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # "loaded", "failed", "disabled", "conflict"
    providers: tuple[str, ...] = ()
    error: str | None = None
    source: str = "entry-point"  # or "builtin", "runtime"


@attrs.frozen(kw_only=True)
class ProviderInfo:
    """A provider that can be used, with where it comes from."""

    name: str
    spec: ProviderSpec
    plugin: str
    distribution: str | None
    version: str | None
    source: str
    lifecycle: bool

    @property
    def modalities(self) -> frozenset[str]:
        return self.spec.modalities


class _Entry:
    """A provider table row (a plain class: discovery builds no more attrs classes than it needs)."""

    __slots__ = ("info", "plugin", "spec")

    def __init__(self, spec: ProviderSpec, plugin: object, info: PluginInfo) -> None:
        self.spec = spec
        self.plugin = plugin
        self.info = info


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _strict() -> bool:
    return os.environ.get("TARASH_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes", "on")


class PluginHost:
    """Owns the pluggy manager, the provider table and runtime registrations."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("tarash")
        self.pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._loaded = False
        self._plugins: list[PluginInfo] = []
        self._providers: dict[str, _Entry] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._runtime: dict[str, _Entry] = {}
        self._field_mappings: dict[str, dict[str, Mapping[str, FieldMapper]]] = {}
        self._callers: dict[tuple[int, str], Any] = {}
        #: provider -> its merged field mappings, and (provider, model) -> (prefix, mappers): both
        #: read on every generation, kept until a registration changes (:meth:`_forget`).
        self._merged: dict[str, dict[str, Mapping[str, FieldMapper]] | None] = {}
        self._resolved: dict[tuple[str, str], tuple[str | None, Mapping[str, FieldMapper] | None]] = {}
        #: Providers whose raising ``async_lifecycle`` hook was already reported (once per registration).
        self._broken_hatches: set[str] = set()
        #: Where entry points are looked for; None means ``sys.path`` (tests narrow it).
        self.search_path: list[str] | None = None

    # -- discovery ---------------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for module_name in BUILTIN_PLUGINS:
                self._load_builtin(module_name)
            self._load_entry_points()
            self._loaded = True

    def _load_builtin(self, module_name: str) -> None:
        import importlib

        module = importlib.import_module(module_name)
        self._register_plugin(module, name=module_name, dist=None, version=None, source="builtin")

    def _load_entry_points(self) -> None:
        # lazy: entry points are read at the first lookup, not at import
        from ._entry_points import entry_points

        disabled = _env_list("TARASH_DISABLE_PLUGINS")
        allowed = _env_list("TARASH_PLUGINS")
        if disabled and disabled[0].lower() in ("1", "*", "all", "true", "yes"):
            return
        found = sorted(
            entry_points(ENTRY_POINT_GROUP, self.search_path), key=lambda ep: (ep.name, ep.distribution or "")
        )
        for ep in found:
            skip = (allowed is not None and ep.name not in allowed and ep.distribution not in allowed) or (
                disabled is not None and (ep.name in disabled or ep.distribution in disabled)
            )
            if skip:
                self._plugins.append(
                    PluginInfo(
                        name=ep.name,
                        distribution=ep.distribution,
                        version=ep.version,
                        status="disabled",
                    )
                )
                continue
            try:
                module = ep.load()
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                self._record_failure(ep.name, ep.distribution, ep.version, "import", exc)
                continue
            self._register_plugin(
                module, name=ep.name, dist=ep.distribution, version=ep.version, source="entry-point"
            )

    def _record_failure(
        self,
        name: str,
        dist: str | None,
        version: str | None,
        stage: str,
        exc: BaseException,
    ) -> None:
        message = f"{stage} failed: {type(exc).__name__}: {exc}"
        info = PluginInfo(name=name, distribution=dist, version=version, status="failed", error=message)
        self._plugins.append(info)
        _log_broken(info, "and was skipped", message, exc)
        _raise_if_strict(info, message, exc)

    def _register_plugin(
        self,
        module: object,
        *,
        name: str,
        dist: str | None,
        version: str | None,
        source: str,
    ) -> None:
        try:
            self.pm.register(module, name=f"{source}:{dist or '-'}:{name}")
            impls = [i for i in self.pm.hook.register_providers.get_hookimpls() if i.plugin is module]
            specs: list[ProviderSpec] = []
            for impl in impls:
                returned = impl.function()
                if not isinstance(returned, (list, tuple)) or not all(
                    isinstance(s, ProviderSpec) for s in returned
                ):
                    raise TypeError(
                        "register_providers must return a list of ProviderSpec, got "
                        f"{type(returned).__name__}"
                    )
                specs.extend(returned)
        except Exception as exc:
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._record_failure(name, dist, version, "registration", exc)
            return
        for spec in specs:
            for variable in (spec.api_key_env, *spec.api_key_env_fallbacks) if spec.api_key_env else ():
                register_secret(os.environ.get(variable))
        info = PluginInfo(
            name=name,
            distribution=dist,
            version=version,
            status="loaded",
            providers=tuple(s.name for s in specs),
            source=source,
        )
        self._plugins.append(info)
        for spec in specs:
            existing = self._providers.get(spec.name)
            if existing is not None and existing.info.source != "builtin":
                claimants = self._conflicts.setdefault(spec.name, [_label(existing.info)])
                claimants.append(_label(info))
                log.warning("Provider %r is claimed by %s", spec.name, ", ".join(claimants))
                if _strict():
                    raise ProviderConflictError(spec.name, claimants)
                continue
            self._providers[spec.name] = _Entry(spec=spec, plugin=module, info=info)
        self._forget()

    # -- runtime registration ----------------------------------------------------------------

    def register_handler(self, name: str, handler: object) -> None:
        """Register a seed-style handler object (four methods, no pluggy markers)."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(
                "register_provider: name must be a non-empty string", field="provider", value=name
            )
        adapter = handler_adapter(name, handler)
        with self._lock:
            old = self._runtime.pop(name, None)
            if old is not None and self.pm.is_registered(old.plugin):
                self.pm.unregister(old.plugin)
            self.pm.register(adapter, name=f"runtime:{name}:{id(adapter)}")
            modalities = {"video", "image"}
            spec = ProviderSpec(
                name=name,
                modalities=modalities,
                capabilities=Capabilities(resume=False),
                description=f"runtime handler {type(handler).__name__}",
            )
            info = PluginInfo(
                name=name,
                distribution=None,
                version=None,
                status="loaded",
                providers=(name,),
                source="runtime",
            )
            self._runtime[name] = _Entry(spec=spec, plugin=adapter, info=info)
            self._forget()

    def register_plugin_object(self, plugin: object, name: str) -> None:
        """Register an already-imported plugin object (module or namespace of hookimpls).

        Used for plugins that are not installed as distributions (tests, applications embedding a
        provider); it is recorded like an entry-point plugin with source ``"object"``.
        """
        with self._lock:
            self.ensure_loaded()
            self._register_plugin(plugin, name=name, dist=None, version=None, source="object")

    def unregister_plugin_object(self, plugin: object) -> None:
        """Undo :meth:`register_plugin_object`."""
        with self._lock:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            owned = [e for e in self._providers.values() if e.plugin is plugin]
            infos = {id(e.info) for e in owned}
            self._providers = {k: e for k, e in self._providers.items() if e.plugin is not plugin}
            self._plugins = [p for p in self._plugins if id(p) not in infos]
            self._forget()

    def unregister_handler(self, name: str) -> None:
        with self._lock:
            old = self._runtime.pop(name, None)
            if old is not None and self.pm.is_registered(old.plugin):
                self.pm.unregister(old.plugin)
            self._forget()

    def _forget(self) -> None:
        """Drop what was worked out from the registrations (hook callers, field mappings)."""
        self._callers.clear()
        self._merged.clear()
        self._resolved.clear()
        self._broken_hatches.clear()

    # -- lookup ------------------------------------------------------------------------------

    def _entry(self, name: str) -> _Entry:
        if name in self._runtime:
            return self._runtime[name]
        self.ensure_loaded()
        if name in self._conflicts:
            raise ProviderConflictError(name, self._conflicts[name])
        entry = self._providers.get(name)
        if entry is None:
            raise ProviderNotFoundError(name, self.provider_names())
        return entry

    def provider_names(self) -> list[str]:
        self.ensure_loaded()
        return sorted(set(self._providers) | set(self._runtime))

    def get(self, name: str) -> ProviderInfo:
        entry = self._entry(name)
        return ProviderInfo(
            name=name,
            spec=entry.spec,
            plugin=entry.info.name,
            distribution=entry.info.distribution,
            version=entry.info.version,
            source=entry.info.source,
            lifecycle=self.implements(name, "submit"),
        )

    def providers(self) -> list[ProviderInfo]:
        return [self.get(name) for name in self.provider_names() if name not in self._conflicts]

    def plugins(self) -> list[PluginInfo]:
        self.ensure_loaded()
        conflicted = {c for claimants in self._conflicts.values() for c in claimants}
        listed = [
            attrs.evolve(p, status="conflict", error="provider name claimed by another plugin")
            if _label(p) in conflicted and p.status == "loaded"
            else p
            for p in self._plugins
        ]
        return listed + [e.info for e in self._runtime.values()]

    def _caller(self, plugin: object, hook: str) -> Any:
        """One pluggy hook caller per (plugin, hook) that calls that plugin alone; None if the
        plugin does not implement the hook."""
        key = (id(plugin), hook)
        if key not in self._callers:
            implemented = any(i.plugin is plugin for i in getattr(self.pm.hook, hook).get_hookimpls())
            others = [p for p in self.pm.get_plugins() if p is not plugin]
            self._callers[key] = self.pm.subset_hook_caller(hook, others) if implemented else None
        return self._callers[key]

    def _escape_hatch(self, provider: str) -> Any:
        """The provider's ``async_lifecycle`` object (None without one).

        A hook that raises gives a :class:`_BrokenHatch` instead of raising: listing providers and
        every other provider keep working, and a job through this one fails with a typed error
        its fallback handles (or :class:`PluginLoadError` with ``TARASH_STRICT_PLUGINS``).
        """
        entry = self._entry(provider)
        caller = self._caller(entry.plugin, "async_lifecycle")
        if caller is None:
            return None
        try:
            return caller(provider=provider)
        except Exception as exc:
            return self._broken_hatch(provider, entry.info, exc)

    def _broken_hatch(self, provider: str, info: PluginInfo, exc: Exception) -> _BrokenHatch:
        """Report a raising ``async_lifecycle`` hook the way a plugin failing to load is reported
        (a warning once, the traceback at debug level, ``PluginLoadError`` in strict mode)."""
        message = f"async_lifecycle failed: {type(exc).__name__}: {exc}"
        if provider not in self._broken_hatches:
            self._broken_hatches.add(provider)
            _log_broken(info, f"for provider {provider!r}", message, exc)
        _raise_if_strict(info, message, exc)
        error = GenerationFailedError(
            f"The async_lifecycle hook of provider {provider!r} raised {type(exc).__name__}: {exc}; "
            "nothing was sent to the provider",
            provider=provider,
            retryable=True,
        )
        error.__cause__ = exc
        return _BrokenHatch(error)

    def implements(self, provider: str, hook: str) -> bool:
        """Whether the plugin owning ``provider`` implements ``hook`` (or it through the escape hatch).

        A broken escape hatch counts as implementing the lifecycle hooks, so a job through it
        reaches :meth:`flow` and fails there with the hatch's typed error.
        """
        if self._caller(self._entry(provider).plugin, hook) is not None:
            return True
        hatch = hook in LIFECYCLE and self._escape_hatch(provider)
        if isinstance(hatch, _BrokenHatch):
            return True
        return bool(hatch) and callable(getattr(hatch, hook, None))

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call a plain (non-flow) hook of the plugin owning provider ``name``; None if it has none."""
        caller = self._caller(self._entry(name).plugin, hook)
        return caller(**kwargs) if caller is not None else None

    def flow(self, name: str, hook: str, **kwargs: Any) -> Generator[Any, Any, Any]:
        """The flow of provider ``name``'s ``hook`` for these arguments, from its plugin alone.

        A hook that returned a value instead of a generator is a flow that sends nothing; the
        escape hatch's coroutines become a flow of one :class:`Direct` step.
        """
        caller = self._caller(self._entry(name).plugin, hook)
        if caller is not None:
            returned = caller(**kwargs)
            return returned if inspect.isgenerator(returned) else done(returned)
        hatch = self._escape_hatch(name) if hook in LIFECYCLE else None
        if isinstance(hatch, _BrokenHatch):
            return _failing(hatch.error)
        method = getattr(hatch, hook, None)
        if method is None:
            raise UnsupportedModalityError(name, kwargs["context"].modality, f"no {hook} hook")
        return direct(Direct(sync=None, async_=method, kwargs=kwargs))

    def entry_plugin(self, name: str) -> tuple[ProviderSpec, object]:
        entry = self._entry(name)
        return entry.spec, entry.plugin

    def observed(self, hook: str) -> bool:
        """Whether some plugin implements the observer hook ``hook`` (else :meth:`notify` is a no-op)."""
        if not self._loaded and not self._runtime:
            return False
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin; failures are logged, never raised."""
        if not self._loaded and not self._runtime:
            return
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception:
                log.exception("Observer hook %s of plugin %s raised; ignored", hook, impl.plugin_name)

    # -- field mappings ----------------------------------------------------------------------

    def register_field_mapping(
        self, provider: str, mappings: Mapping[str, Mapping[str, FieldMapper]]
    ) -> None:
        with self._lock:
            self._field_mappings.setdefault(provider, {}).update(
                {prefix: dict(m) for prefix, m in mappings.items()}
            )
            self._forget()

    def field_mapping(self, provider: str) -> dict[str, Mapping[str, FieldMapper]] | None:
        """The provider's field mappings (its spec's, then those registered at runtime), as a
        new dict the caller may change."""
        merged = self._merged_mapping(provider)
        return None if merged is None else dict(merged)

    def _merged_mapping(self, provider: str) -> dict[str, Mapping[str, FieldMapper]] | None:
        if provider in self._merged:
            return self._merged[provider]
        with self._lock:  # a registration that changes it meanwhile waits, then forgets it
            merged: dict[str, Mapping[str, FieldMapper]] | None = {}
            try:
                merged = dict(self._entry(provider).spec.field_mappings)
            except ProviderNotFoundError:
                if provider not in self._field_mappings:
                    merged = None
            if merged is not None:
                merged.update(self._field_mappings.get(provider, {}))
            self._merged[provider] = merged
            return merged

    def resolve_field_mappers(
        self, provider: str, model: str
    ) -> tuple[str | None, Mapping[str, FieldMapper] | None]:
        """The longest model prefix of the provider's field mappings that ``model`` matches, and
        its mappers (None, None when none does)."""
        found = self._resolved.get((provider, model))
        if found is not None:
            return found
        with self._lock:
            table = self._merged_mapping(provider) or {}
            prefix = match_model_prefix(model, table)
            found = (prefix, table[prefix] if prefix is not None else None)
            if len(self._resolved) >= RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[(provider, model)] = found
            return found

    def reset(self, search_path: list[str] | None = None) -> None:
        """Forget everything and discover again from ``search_path`` (tests only)."""
        self.__init__()  # type: ignore[misc]
        self.search_path = search_path


LIFECYCLE = frozenset({"submit", "status", "result", "cancel"})


def _log_broken(info: PluginInfo, how: str, message: str, exc: BaseException) -> None:
    """Report a broken plugin: a warning, and its traceback at debug level."""
    log.warning(
        "Tarash plugin %r (%s %s) is broken %s: %s",
        info.name,
        info.distribution or "?",
        info.version or "?",
        how,
        message,
    )
    log.debug("Traceback of plugin %r:\n%s", info.name, "".join(traceback.format_exception(exc)))


def _raise_if_strict(info: PluginInfo, message: str, exc: BaseException) -> None:
    """With ``TARASH_STRICT_PLUGINS``, a broken plugin is an error: PluginLoadError."""
    if _strict():
        raise PluginLoadError(
            f"Tarash plugin {info.name!r} failed to load: {message}",
            plugin=info.name,
            distribution=info.distribution,
            version=info.version,
        ) from exc


class _BrokenHatch:
    """What an ``async_lifecycle`` hook that raised leaves: the typed error its lifecycle hooks
    fail with (retryable, since the provider was never called, so the next fallback runs)."""

    __slots__ = ("error",)

    def __init__(self, error: GenerationFailedError) -> None:
        self.error = error


def _failing(error: BaseException) -> Generator[Any, Any, Any]:
    """A flow that raises ``error`` before sending anything."""
    raise error
    yield  # a generator, so the engine runs it as a flow


def _label(info: PluginInfo) -> str:
    return f"{info.distribution or info.name} {info.version or ''}".strip()


HOST = PluginHost()
