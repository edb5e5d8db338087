"""The composition root: a :class:`Gateway` owns the plugin host, the transport's connection pools,
the job ledger, the secrets it resolved and the background event loop.

The module-level functions (``generate_video``, ``register_provider``, ``set_ledger``...) are sugar
over one default gateway, built on first use. Two gateways share no state: providers registered on
one, its pools, its ledger and its loop are its own.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from ._plugins import HOST, PluginHost
from .exceptions import ResultNotCollectedError

if TYPE_CHECKING:
    from . import _runtime as rt
    from ._ledger import JobStore, LedgerAdapter
    from ._transport import Transport
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

__all__ = ["Gateway", "default_gateway"]

_FROM_ENVIRONMENT = "environment"


class Gateway:
    """One Tarash: providers, connections, ledger, secrets and a background loop.

    Args:
        ledger: where jobs are recorded: a ``JobStore``, a SQLite file path, ``"off"``, or
            ``"environment"`` (the default: ``TARASH_LEDGER`` / ``TARASH_HOME``, and
            ``set_ledger`` for the default gateway).
        discover: load installed plugins from entry points (the default). ``False`` gives a
            gateway with the built-in mock and what you register on it.
        transport: a :class:`~tarash.tarash_gateway._transport.Transport` to send requests with
            (tests pass one mounted on ``httpx.MockTransport``).

    Example::

        gateway = Gateway(ledger="off")
        gateway.register_provider("mine", MyHandler())
        response = gateway.generate_video(config, request)
    """

    def __init__(
        self,
        *,
        ledger: JobStore | str | os.PathLike[str] = _FROM_ENVIRONMENT,
        discover: bool = True,
        transport: Transport | None = None,
        _host: PluginHost | None = None,
    ) -> None:
        self.host = _host if _host is not None else PluginHost()
        if not discover:
            self.host.search_path = []
        self._transport = transport
        self._background: rt.BackgroundLoop | None = None
        self._ledger_choice = ledger
        self._ledger: LedgerAdapter | None = None
        self._ledger_ready = False
        self._lock = threading.Lock()
        self.secrets: set[str] = set()

    # -- owned resources -----------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The connection pools (built on the first request)."""
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    from ._transport import Transport

                    self._transport = Transport()
        return self._transport

    @property
    def background(self) -> rt.BackgroundLoop:
        """The event loop on which sync calls run coroutines (started on first use)."""
        if self._background is None:
            with self._lock:
                if self._background is None:
                    from ._runtime import BackgroundLoop

                    self._background = BackgroundLoop()
        return self._background

    def ledger(self) -> LedgerAdapter | None:
        """The job ledger in effect, or None when it is off."""
        if self._ledger_choice == _FROM_ENVIRONMENT:
            from ._ledger import active_ledger

            return active_ledger()
        if not self._ledger_ready:
            with self._lock:
                if not self._ledger_ready:
                    self._ledger = _open_ledger(self._ledger_choice)
                    self._ledger_ready = True
        return self._ledger

    def register_secret(self, value: str | None) -> None:
        """Remember a credential this gateway resolved; it is scrubbed from all Tarash output."""
        if value:
            from ._redact import register_secret

            self.secrets.add(value)
            register_secret(value)

    def close(self) -> None:
        """Close the connection pools and stop the background loop."""
        if self._transport is not None:
            self._transport.close()
        if self._background is not None:
            self._background.stop()

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
        from . import _runtime as rt
        from ._engine import run_chain

        try:
            return rt.drive_sync(run_chain(self, config, request, modality, on_progress), self.background)
        except ResultNotCollectedError as exc:
            raise _with_handle(exc) from exc.__cause__

    async def _run_async(self, config: Any, request: Any, modality: Any, on_progress: Any) -> Any:
        from . import _runtime as rt
        from ._engine import run_chain

        try:
            return await rt.drive_async(run_chain(self, config, request, modality, on_progress))
        except ResultNotCollectedError as exc:
            raise _with_handle(exc) from exc.__cause__

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
        from . import _runtime as rt
        from ._engine import standalone_flow

        flow = standalone_flow(self, flow, label, timeout=timeout, ca_bundle=ca_bundle)
        return rt.drive_sync(flow, self.background)

    async def run_flow_async(
        self, flow: Any, *, label: str = "tarash", timeout: float = 30.0, ca_bundle: str | None = None
    ) -> Any:
        """Async :meth:`run_flow`."""
        from . import _runtime as rt
        from ._engine import standalone_flow

        return await rt.drive_async(standalone_flow(self, flow, label, timeout=timeout, ca_bundle=ca_bundle))

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


def _with_handle(error: ResultNotCollectedError) -> ResultNotCollectedError:
    """Give a completed-but-uncollected job's error the handle that collects it."""
    from .jobs import JobHandle

    error.handle = JobHandle(key=error.ledger_key, job=error.job, config=error.config)
    return error


def _open_ledger(choice: Any) -> LedgerAdapter | None:
    from ._ledger import OFF_VALUES, JobStore, LedgerAdapter, SQLiteJobStore

    if isinstance(choice, JobStore):
        return LedgerAdapter(choice)
    text = os.fspath(choice)
    if text.strip().lower() in OFF_VALUES:
        return None
    return LedgerAdapter(SQLiteJobStore(text).open())


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
