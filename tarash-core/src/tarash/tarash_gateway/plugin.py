"""Everything a provider plugin imports: the ``hookimpl`` marker and the records hooks return.

A plugin is a module with functions decorated by :data:`hookimpl`, named after the hookspecs in
:mod:`tarash.tarash_gateway.hookspecs`, and an entry point in the ``tarash`` group::

    [project.entry-points.tarash]
    example = "tarash_example_provider._plugin"

The lifecycle records (:class:`CallContext`, :class:`SubmittedJob`, :class:`JobRef`,
:class:`JobStatus`) are built the first time one of them is looked up, not by provider discovery;
an entry module that only names them in annotations should import them under ``TYPE_CHECKING``
so that discovery stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import attrs
import pluggy

from .exceptions import ValidationError
from .field_mappers import FieldMapper

if TYPE_CHECKING:
    from ._cost import PricingRule, ReportedUsage, UnitPrice
    from ._lost_submissions import Reconciliation, SubmissionIntent
    from ._records import CallContext, JobRef, JobState, JobStatus, SubmittedJob
    from ._wire import Flow, Request, Response

__all__ = [
    "CallContext",
    "Capabilities",
    "Flow",
    "JobRef",
    "JobState",
    "JobStatus",
    "Lazy",
    "Modality",
    "ModelFamily",
    "PricingRule",
    "ProviderSpec",
    "Reconciliation",
    "ReportedUsage",
    "Request",
    "Response",
    "SubmissionIntent",
    "SubmittedJob",
    "UnitPrice",
    "hookimpl",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Marker for hook implementations: ``@hookimpl def register_providers(): ...``.
hookimpl: Callable[[F], F] = cast("Callable[[F], F]", pluggy.HookimplMarker("tarash"))

Modality = Literal["video", "image"]
MODALITIES: tuple[Modality, ...] = ("video", "image")


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a provider can do; core and the conformance kit read these flags.

    Attributes:
        cancel: the provider can cancel a submitted job (core cancels on deadline and fallback).
        queue_position: status updates carry a queue position.
        progress_percent: status updates carry a percentage.
        logs: status updates carry log lines.
        webhooks: submit accepts a webhook URL (``provider_config["webhook_url"]``).
        idempotency_key: submit honours ``CallContext.idempotency_key``, so core may retry a submit
            whose answer was lost without risking a second bill.
        resume: a job can be polled again from its :class:`JobRef` in another process.
    """

    cancel: bool = False
    queue_position: bool = False
    progress_percent: bool = False
    logs: bool = False
    webhooks: bool = False
    idempotency_key: bool = False
    resume: bool = True


@attrs.frozen(kw_only=True)
class ModelFamily:
    """A family of models a provider knows, with the values it accepts.

    Attributes:
        prefix: model-id prefix matched on path segments (``"fal-ai/veo3.1"`` matches
            ``"fal-ai/veo3.1/fast"`` but not ``"fal-ai/veo3.10"``).
        modality: ``"video"`` or ``"image"``.
        name: display name.
        allowed: unified field name -> allowed values (e.g. ``{"duration_seconds": (4, 6, 8)}``).
        description: one line for ``tarash models``.
    """

    prefix: str
    modality: Modality
    name: str = ""
    allowed: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict)
    description: str = ""


def _frozenset(value: Any) -> frozenset[str]:
    return frozenset(value)


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _tuple(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Lazy) else tuple(value)


class Lazy(Mapping[Any, Any], Sequence[Any]):
    """A table built on first use: ``Lazy(lambda: {...})`` or ``Lazy(lambda: (...))``.

    Give it as ``ProviderSpec.models`` or ``ProviderSpec.field_mappings`` when building the table
    needs a large module: discovery (``register_providers``) then stays cheap, and the table is
    built the first time Tarash reads it (a generation, ``tarash models``).
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value

    def __getitem__(self, key: Any) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, key: object) -> bool:
        return key in self._get()

    def __eq__(self, other: object) -> bool:
        return bool(self._get() == (other._get() if isinstance(other, Lazy) else other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Lazy(<not built yet>)" if self._value is None else f"Lazy({self._value!r})"


@attrs.frozen(kw_only=True)
class ProviderSpec:
    """A provider a plugin registers (returned by the ``register_providers`` hook).

    Attributes:
        name: the provider id users pass as ``config.provider`` (lower case, no spaces).
        modalities: ``{"video"}``, ``{"image"}`` or both.
        capabilities: see :class:`Capabilities`.
        models: known model families (for ``tarash models`` and docs); may be :class:`Lazy`.
        field_mappings: model prefix -> {api field: FieldMapper}; read with
            ``get_provider_field_mapping`` and extended by ``register_provider_field_mapping``;
            may be :class:`Lazy`.
        api_key_env: the environment variable holding the key (e.g. ``"FAL_KEY"``); ``None`` for
            a provider that needs no key. Core resolves the key (``config.api_key``, else this
            variable, else the ``resolve_api_key`` hook) before anything is sent.
        api_key_env_fallbacks: more variables tried, in order, when ``api_key_env`` is unset
            (``("GOOGLE_API_KEY",)`` after ``"GEMINI_API_KEY"``).
        base_url: the API root (``"https://api.example.com"``); ``config.base_url`` overrides it
            (proxies, local servers).
        unsupported: modality -> why the provider has none (``{"video": "Sora was retired on
            2026-09-24"}``): the ``UnsupportedModalityError`` for that modality says it.
        auth_header: the header core puts the key in (``"Authorization"``, ``"api-key"``...).
        auth_scheme: the word before the key in that header (``"Bearer"``, ``"Key"``; ``""`` for
            the bare key).
        description: one line for ``tarash providers``.
    """

    name: str
    modalities: frozenset[str] = attrs.field(converter=_frozenset)
    capabilities: Capabilities = attrs.field(factory=Capabilities)
    models: Sequence[ModelFamily] = attrs.field(default=(), converter=_tuple)
    field_mappings: Mapping[str, Mapping[str, FieldMapper]] = attrs.field(factory=dict)
    api_key_env: str | None = None
    api_key_env_fallbacks: tuple[str, ...] = attrs.field(default=(), converter=_names)
    base_url: str | None = None
    unsupported: Mapping[str, str] = attrs.field(factory=dict)
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip().lower():
            raise ValidationError(
                f"ProviderSpec.name must be a lower-case identifier, got {self.name!r}",
                field="name",
                value=self.name,
            )
        unknown = set(self.modalities) - set(MODALITIES)
        if not self.modalities or unknown:
            raise ValidationError(
                f"ProviderSpec.modalities must be a non-empty subset of {MODALITIES}, "
                f"got {sorted(self.modalities)}",
                field="modalities",
                value=sorted(self.modalities),
                allowed=MODALITIES,
            )


#: The names built the first time they are looked up, and the module of each.
_LAZY = {
    **dict.fromkeys(("CallContext", "JobRef", "JobState", "JobStatus", "SubmittedJob"), "._records"),
    **dict.fromkeys(("Reconciliation", "SubmissionIntent"), "._lost_submissions"),
    **dict.fromkeys(("Flow", "Request", "Response"), "._wire"),
    **dict.fromkeys(("PricingRule", "ReportedUsage", "UnitPrice"), "._cost"),
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is not None:
        import importlib

        module = importlib.import_module(module_name, __package__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
