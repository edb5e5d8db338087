"""Entry point of the example provider (``[project.entry-points.tarash] example = ...``).

Only hook implementations live here. Tarash imports this module the first time it needs the list
of providers, so it must stay cheap: it imports tarash-core and the field tables, the module that
uses httpx is imported inside the hooks, and the lifecycle records, which these hooks only name in
annotations, are imported for type checkers only (core builds them on first use).
"""

# --8<-- [start:imports]
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._fields import SPEC

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, JobRef, JobStatus, SubmittedJob
# --8<-- [end:imports]


# --8<-- [start:register]
@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [SPEC]


# --8<-- [end:register]


# --8<-- [start:hooks]
@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    from . import _provider

    return _provider.submit(config, request, context)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    from . import _provider

    return _provider.status(config, job, context)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Any:
    from . import _provider

    return _provider.result(config, job, context)


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> bool:
    from . import _provider

    return _provider.cancel(config, job, context)


# --8<-- [end:hooks]


@hookimpl
async def submit_async(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    from . import _provider

    return await _provider.submit_async(config, request, context)


@hookimpl
async def status_async(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    from . import _provider

    return await _provider.status_async(config, job, context)


@hookimpl
async def result_async(config: Any, job: JobRef, context: CallContext) -> Any:
    from . import _provider

    return await _provider.result_async(config, job, context)


@hookimpl
async def cancel_async(config: Any, job: JobRef, context: CallContext) -> bool:
    from . import _provider

    return await _provider.cancel_async(config, job, context)


# --8<-- [start:commands]
@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("example-server", help="run the Example API reference server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.set_defaults(func=_serve)


def _serve(args: Any) -> int:
    from .server import main

    return main(["--port", str(args.port)])


# --8<-- [end:commands]
