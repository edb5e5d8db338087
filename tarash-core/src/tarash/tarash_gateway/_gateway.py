"""The composition root: a :class:`Gateway` owns the plugin host, the transport's connection pools,
the job ledger, the secrets it resolved and the background event loop (its base,
:class:`~tarash.tarash_gateway._resources.GatewayResources`, builds and closes them); here is what
is done with them, and :class:`JobHandle`, a job of the default gateway.

The module-level functions (``generate_video``, ``register_provider``, ``set_ledger``...) are sugar
over one default gateway, built on first use. Two gateways share no state: providers registered on
one, its pools, its ledger and its loop are its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._plain import parse_json
from ._plugins import HOST
from ._resources import GatewayResources
from .exceptions import LedgerError, ResultNotCollectedError
from .models import ImageGenerationConfig, VideoGenerationConfig

if TYPE_CHECKING:
    from ._cost import Cost
    from ._ledger import JobRecord
    from .field_mappers import FieldMapper
    from .models import (
        ImageGenerationConfig,
        ImageGenerationRequest,
        ImageGenerationResponse,
        ImageProgressCallback,
        ProgressCallback,
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
    )
    from .plugin import JobRef, JobStatus, Modality

__all__ = ["Gateway", "default_gateway"]


class Gateway(GatewayResources):
    """One Tarash: providers, connections, ledger, secrets and a background loop.

    Args:
        ledger: where jobs are recorded: a ``JobStore``, a SQLite file path, ``"off"``, or
            ``"environment"`` (the default: ``TARASH_LEDGER`` / ``TARASH_HOME``, and
            ``set_ledger`` for the default gateway).
        discover: load installed plugins from entry points (the default). ``False`` gives a
            gateway with the built-in mock and what you register on it.
        transport: a :class:`~tarash.tarash_gateway._transport.Transport` to send requests with
            (tests pass one mounted on ``httpx.MockTransport``).
        concurrency: caps on jobs in flight, ``{"provider": N, "provider/model": N}`` (callers
            beyond a cap wait their turn, first come first served); None (the default) reads
            ``TARASH_CONCURRENCY`` (``"fal=3,fal/fal-ai/veo3=1"``). See :meth:`set_concurrency`.

    A gateway is a context manager (``with``, or ``async with`` in async code), which closes it
    at the end; :meth:`close` (:meth:`aclose` from async code) does the same by hand.

    Example::

        with Gateway(ledger="off") as gateway:
            gateway.register_provider("mine", MyHandler())
            response = gateway.generate_video(config, request)
    """

    # -- generating ------------------------------------------------------------------------------

    def generate_video(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse:
        """Generate a video (see :func:`tarash.tarash_gateway.generate_video`)."""
        result: VideoGenerationResponse = self._run_sync(config, request, "video", on_progress)
        return result

    async def generate_video_async(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse:
        """Async :meth:`generate_video`; cancelling the task cancels the remote job."""
        result: VideoGenerationResponse = await self._run_async(config, request, "video", on_progress)
        return result

    def generate_image(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse:
        """Generate images (see :meth:`generate_video`)."""
        result: ImageGenerationResponse = self._run_sync(config, request, "image", on_progress)
        return result

    async def generate_image_async(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse:
        """Async :meth:`generate_image`."""
        result: ImageGenerationResponse = await self._run_async(config, request, "image", on_progress)
        return result

    def _run_sync(self, config: Any, request: Any, modality: Any, on_progress: Any) -> Any:
        # lazy: loaded at the first generation, not at discovery
        from . import _runtime as rt
        from ._engine import run_chain

        try:
            return rt.drive_sync(run_chain(self, config, request, modality, on_progress), self.background)
        except ResultNotCollectedError as exc:
            raise _with_handle(exc, self) from exc.__cause__

    async def _run_async(self, config: Any, request: Any, modality: Any, on_progress: Any) -> Any:
        # lazy: loaded at the first generation, not at discovery
        from . import _runtime as rt
        from ._engine import run_chain

        try:
            return await rt.drive_async(run_chain(self, config, request, modality, on_progress))
        except ResultNotCollectedError as exc:
            raise _with_handle(exc, self) from exc.__cause__

    def run_hook(
        self,
        hook: str,
        config: Any,
        *,
        request: Any = None,
        job: Any = None,
        modality: str | None = None,
    ) -> Any:
        """Run one provider hook (``submit``, ``status``, ``result``, ``cancel``,
        ``generate_video``, ``generate_image``) through this gateway's transport and return what
        its flow returns: no polling, retries, ledger or fallbacks. For plugin authors' tests.

        Pass ``request`` to ``submit``/``generate_*`` and ``job`` (a ``JobRef``) to the others;
        ``modality`` defaults to the job's, else to the config's kind.
        """
        # lazy: loaded at the first generation, not at discovery
        from . import _runtime as rt
        from ._engine import hook_flow, modality_of

        kind = modality or (job.modality if job is not None else modality_of(config))
        flow = hook_flow(self, hook, config, modality=kind, request=request, job=job)  # type: ignore[arg-type]
        return rt.drive_sync(flow, self.background)

    def run_flow(
        self, flow: Any, *, label: str = "tarash", timeout: float = 30.0, ca_bundle: str | None = None
    ) -> Any:
        """Drive a flow that belongs to no generation (a webhook key set, a model schema):
        requests to absolute URLs, no key, through this gateway's transport; ``ca_bundle`` trusts
        a private CA (a proxy, a local server) instead of the system's."""
        # lazy: loaded at the first generation, not at discovery
        from . import _runtime as rt
        from ._engine import standalone_flow

        flow = standalone_flow(self, flow, label, timeout=timeout, ca_bundle=ca_bundle)
        return rt.drive_sync(flow, self.background)

    async def run_flow_async(
        self, flow: Any, *, label: str = "tarash", timeout: float = 30.0, ca_bundle: str | None = None
    ) -> Any:
        """Async :meth:`run_flow`."""
        # lazy: loaded at the first generation, not at discovery
        from . import _runtime as rt
        from ._engine import standalone_flow

        return await rt.drive_async(standalone_flow(self, flow, label, timeout=timeout, ca_bundle=ca_bundle))

    # -- costs -----------------------------------------------------------------------------------

    def estimate_cost(self, config: AnyConfig, request: Any, *, price_api: bool = True) -> Cost | None:
        """The expected cost of ``request`` on ``config`` without submitting anything (see
        :func:`tarash.tarash_gateway.costs.estimate_cost`); ``price_api=False`` sends nothing at
        all (no price API request: user overrides and the bundled table only)."""
        # lazy: loaded at the first estimate, not at discovery
        from . import _runtime as rt
        from ._estimate import estimate_flow

        return rt.drive_sync(estimate_flow(self, config, request, price_api=price_api), self.background)  # type: ignore[no-any-return]

    async def estimate_cost_async(
        self, config: AnyConfig, request: Any, *, price_api: bool = True
    ) -> Cost | None:
        """Async :meth:`estimate_cost`."""
        # lazy: loaded at the first estimate, not at discovery
        from . import _runtime as rt
        from ._estimate import estimate_flow

        return await rt.drive_async(estimate_flow(self, config, request, price_api=price_api))

    def set_price(
        self,
        provider: str,
        model: str,
        *,
        unit: str,
        price: Any = None,
        variants: Mapping[str, Any] | None = None,
        currency: str = "USD",
    ) -> None:
        """Override the price of ``model`` (a prefix) at ``provider`` for this gateway: it wins over
        the provider's price API and the bundled table. ``price`` and ``variants`` (a resolution ->
        price) are Decimals, ints or decimal strings."""
        # lazy: loaded at first use, not at discovery
        from ._cost import UnitPrice
        from ._pricing import book

        record = UnitPrice(unit=unit, price=price, variants=variants or {}, currency=currency)  # type: ignore[arg-type]
        book(self).set_price(provider, model, record)

    def set_budget(
        self, amount: Any, *, period: str = "month", currency: str = "USD", fail_open: bool = False
    ) -> None:
        """Cap what this gateway's ledger may spend per ``period`` (``"day"``, ``"week"``,
        ``"month"``, UTC); ``amount=None`` removes the cap. Kept in the job ledger, so every
        process sharing it is held to it: a call whose estimate does not fit in what is left (or
        cannot be estimated) is refused before submit with ``BudgetExceededError``. A call the
        budget cannot check (an estimate in another currency, a cost in the ledger that cannot
        be read) is refused with ``BudgetUnavailableError``, or with ``fail_open=True`` goes
        ahead with a warning."""
        # lazy: the ledger and the cost modules load at first use, not at discovery
        from ._budget import set_budget

        set_budget(self.ledger(), amount, period=period, currency=currency, fail_open=fail_open)

    def budget(self) -> dict[str, Any] | None:
        """The budget kept in this gateway's ledger (``{amount, currency, period, spent}``), or None."""
        # lazy: the ledger and the cost modules load at first use, not at discovery
        from ._budget import get_budget, spent

        ledger = self.ledger()
        found = get_budget(ledger)
        if found is None or ledger is None:
            return None
        return {**found, "spent": str(spent(ledger, found["period"], found["currency"]))}

    # -- providers -------------------------------------------------------------------------------

    def register_provider(self, provider: str, handler: Any) -> None:
        """Register a seed-style handler object as ``provider`` on this gateway."""
        self.host.register_handler(provider, handler)

    def unregister_provider(self, provider: str) -> None:
        """Remove a provider registered with :meth:`register_provider`."""
        self.host.unregister_handler(provider)

    def register_plugin(self, plugin: object, name: str) -> None:
        """Register a plugin object (a module or namespace of hookimpls) on this gateway."""
        self.host.register_plugin_object(plugin, name)

    def register_provider_field_mapping(
        self, provider: str, model_mappings: dict[str, dict[str, FieldMapper]]
    ) -> None:
        """Add or replace field mappings (model prefix -> {api field: FieldMapper})."""
        self.host.register_field_mapping(provider, model_mappings)

    def list_providers(self) -> list[Any]:
        """Every usable provider of this gateway."""
        return self.host.providers()

    def list_plugins(self) -> list[Any]:
        """Every plugin of this gateway with its status."""
        return self.host.plugins()

    def get_provider(self, name: str) -> Any:
        """One provider's description."""
        return self.host.get(name)


def _with_handle(error: ResultNotCollectedError, gateway: Gateway) -> ResultNotCollectedError:
    """Give a completed-but-uncollected job's error the handle that collects it, through
    ``gateway`` (its plugins and ledger)."""
    handle = JobHandle(key=error.ledger_key, job=error.job, config=error.config)
    object.__setattr__(handle, "_gateway", gateway)  # frozen, and never serialised
    error.handle = handle
    return error


_default: Gateway | None = None
_default_lock = threading.Lock()


def default_gateway() -> Gateway:
    """The gateway behind the module-level functions (its host is the module's plugin host)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Gateway(_host=HOST)
    return _default


# ----------------------------------------------------------------------------------------------
# Handles: a job of a gateway
# ----------------------------------------------------------------------------------------------


AnyConfig = VideoGenerationConfig | ImageGenerationConfig
OnProgress = Callable[[Any], Any]


def _config_class(job: Any) -> type[AnyConfig]:
    """The config class of a serialised handle's job (image or video, by its modality)."""
    modality = job.get("modality") if isinstance(job, Mapping) else None
    return ImageGenerationConfig if modality == "image" else VideoGenerationConfig


def _with_key(config: AnyConfig, api_key: str | None) -> AnyConfig:
    """``config`` with ``api_key`` when given (else core resolves the key at each call)."""
    return attrs.evolve(config, api_key=api_key) if api_key else config


@attrs.frozen(kw_only=True, repr=False)
class JobHandle:
    """A submitted job: poll it, wait for it, fetch its result or cancel it, from any process.

    Attributes:
        key: the ledger key of the submission.
        job: the provider's job (provider, model, modality, job id, polling data).
        config: the config the job was submitted with (no fallbacks; the API key is kept in memory
            but never serialised).

    :meth:`wait` never cancels the job: on a timeout, an interrupt or a failing callback the job
    keeps running and can be waited for again, resumed or cancelled with :meth:`cancel`.
    """

    key: str
    job: JobRef
    # _converters.STRUCTURE_AS: the config's class follows the job's modality when loading
    config: VideoGenerationConfig | ImageGenerationConfig = attrs.field(
        metadata={"tarash.structure_as": lambda data: _config_class(data.get("job"))}
    )
    #: The gateway whose plugins and ledger the handle's calls use: the one whose generation
    #: raised ResultNotCollectedError with it; else (a handle submitted, resumed or loaded) the
    #: default gateway. Not serialised, compared or shown.
    _gateway: Gateway | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def __repr__(self) -> str:
        return (
            f"JobHandle(provider={self.provider!r}, model={self.model!r}, "
            f"job_id={self.job_id!r}, key={self.key!r})"
        )

    @property
    def provider(self) -> str:
        return self.job.provider

    @property
    def model(self) -> str:
        return self.job.model

    @property
    def modality(self) -> Modality:
        return self.job.modality

    @property
    def job_id(self) -> str:
        """The provider's id for the job."""
        return self.job.job_id

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for the handle (no API key)."""
        from .serialization import to_dict  # lazy: cattrs loads at the first (de)serialisation

        return to_dict(self)

    def to_json(self) -> str:
        """JSON text for the handle (no API key)."""
        from .serialization import to_json  # lazy: cattrs loads at the first (de)serialisation

        return to_json(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], api_key: str | None = None) -> JobHandle:
        """Load a handle; the key is ``api_key`` or else the provider's environment variable."""
        from .serialization import from_dict  # lazy: cattrs loads at the first (de)serialisation

        handle = from_dict(cls, data)
        return attrs.evolve(handle, config=_with_key(handle.config, api_key))

    @classmethod
    def from_json(cls, text: str | bytes, api_key: str | None = None) -> JobHandle:
        """Load a handle from :meth:`to_json` text (see :meth:`from_dict` for the key)."""
        return cls.from_dict(parse_json(text), api_key=api_key)

    @classmethod
    def from_record(cls, record: JobRecord, api_key: str | None = None) -> JobHandle:
        """A handle for a ledger record (raises LedgerError when it has no job id or config)."""
        from .serialization import from_dict  # lazy: cattrs loads at the first (de)serialisation

        if record.job is None:
            raise LedgerError(
                f"Job {record.key} has no recorded provider job (its submit's answer "
                "was lost, or its polling data could not be recorded)",
                provider=record.provider,
                model=record.model,
                request_id=record.job_id,
            )
        if record.config is None:
            raise LedgerError(
                f"Job {record.key} has no recorded config, so it cannot be polled",
                provider=record.provider,
                model=record.model,
                request_id=record.job.job_id,
            )
        config: AnyConfig
        if record.modality == "image":
            config = from_dict(ImageGenerationConfig, record.config)
        else:
            config = from_dict(VideoGenerationConfig, record.config)
        return cls(key=record.key, job=record.job, config=_with_key(config, api_key))

    # -- calls: flows of the engine layer (_job_flows) on the handle's gateway -----------------

    def _drive(self, flow: str, *args: Any) -> Any:
        from . import _job_flows, _runtime  # lazy: the engine loads at the first call, not at discovery

        gateway = self._gateway or default_gateway()
        return _runtime.drive_sync(getattr(_job_flows, flow)(self, gateway, *args), gateway.background)

    async def _drive_async(self, flow: str, *args: Any) -> Any:
        from . import _job_flows, _runtime  # lazy: the engine loads at the first call, not at discovery

        gateway = self._gateway or default_gateway()
        return await _runtime.drive_async(getattr(_job_flows, flow)(self, gateway, *args))

    def status(self) -> JobStatus:
        """One status call (retried on transient errors); ``raw`` is redacted."""
        status: JobStatus = self._drive("status_flow")
        return status

    async def status_async(self) -> JobStatus:
        """Async :meth:`status`."""
        status: JobStatus = await self._drive_async("status_flow")
        return status

    def result(self) -> Any:
        """The response of a completed job (one status call, then the result).

        Raises JobNotFinishedError while it is queued or processing, and the job's typed error
        (e.g. GenerationFailedError, JobCancelledError) when it failed or was cancelled.
        """
        return self._drive("result_flow")

    async def result_async(self) -> Any:
        """Async :meth:`result`."""
        return await self._drive_async("result_flow")

    def wait(self, on_progress: OnProgress | None = None, timeout: float | None = None) -> Any:
        """Poll until the job ends and return its response.

        A job submitted with ``config.webhook_url`` also ends its wait the moment a
        :class:`~tarash.tarash_gateway.webhooks.WebhookReceiver` in this process applies the
        job's delivery, without another status poll; polling stays the backstop.
        ``timeout`` (seconds, default ``config.timeout``) counts from now. On TimeoutError the job
        keeps running. ``on_progress`` gets the same updates as with ``generate_video``.
        """
        return self._drive("wait_flow", on_progress, timeout)

    async def wait_async(self, on_progress: OnProgress | None = None, timeout: float | None = None) -> Any:
        """Async :meth:`wait`; cancelling the task stops waiting but not the job."""
        return await self._drive_async("wait_flow", on_progress, timeout)

    def cancel(self) -> bool:
        """Ask the provider to cancel the job.

        True when the provider accepted (the ledger marks the job cancelled), False when it cannot
        cancel jobs; raises TarashException (phase ``cancel``) when the cancel call failed.
        """
        return bool(self._drive("cancel_flow"))

    async def cancel_async(self) -> bool:
        """Async :meth:`cancel`."""
        return bool(await self._drive_async("cancel_flow"))
