"""Seed-style handlers as plugins: the :class:`Direct` flow step and the adapter that registers a
handler object (four ``generate_*`` methods doing their own I/O, as ``register_provider`` takes
them) as blocking hooks of the plugin host."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any

import attrs

from .exceptions import UnsupportedModalityError
from .plugin import hookimpl

__all__ = ["Direct", "direct", "done", "handler_adapter"]


@attrs.frozen
class Direct:
    """A flow step only core's adapters yield: call a function that does its own I/O.

    ``sync`` is called by the sync API, ``async_`` by the async one (the driver bridges a missing
    one). With ``progress`` the call also receives ``on_progress`` (seed handlers take it).
    """

    sync: Callable[..., Any] | None
    async_: Callable[..., Any] | None
    kwargs: dict[str, Any]
    progress: bool = False


def done(value: Any) -> Generator[Any, Any, Any]:
    return value
    yield  # a generator that sends nothing


def direct(step: Direct) -> Generator[Any, Any, Any]:
    return (yield step)


class _HandlerPlugin:
    """The plugin object a seed-style handler is registered as (hashable, as pluggy needs)."""


def handler_adapter(name: str, handler: object) -> _HandlerPlugin:
    """A seed-style handler (four ``generate_*`` methods doing their own I/O) as blocking hooks.

    The sync API calls the handler's sync method, the async API its ``_async`` one (either bridges
    to the other when one is missing); ``NotImplementedError`` becomes ``UnsupportedModalityError``.
    """

    def blocking(modality: str, sync: Any, async_: Any) -> Callable[..., Any]:
        if sync is not None and inspect.iscoroutinefunction(sync):
            sync, async_ = None, async_ or sync

        def flow(config: Any, request: Any, context: Any) -> Generator[Any, Any, Any]:
            try:
                step = Direct(
                    sync=sync, async_=async_, kwargs={"config": config, "request": request}, progress=True
                )
                return (yield step)
            except UnsupportedModalityError:
                raise
            except NotImplementedError as exc:
                raise UnsupportedModalityError(name, modality, str(exc)) from exc

        return flow

    namespace = _HandlerPlugin()
    for modality, base in (("video", "generate_video"), ("image", "generate_image")):
        sync, async_ = (getattr(handler, m, None) for m in (base, f"{base}_async"))
        sync, async_ = (m if callable(m) else None for m in (sync, async_))
        if sync is not None or async_ is not None:
            setattr(namespace, base, hookimpl(blocking(modality, sync, async_)))
    return namespace
