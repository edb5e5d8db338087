"""``tarash webhooks serve``: run core's webhook receiver as a small HTTP server.

Deliveries to ``POST {path}/{provider}`` are verified by the provider's plugin, deduplicated and
applied to the job ledger (see :mod:`tarash.tarash_gateway.webhooks`). Serving needs an ASGI
server: ``uvicorn`` (``pip install 'tarash-core[webhooks]'``). Only the standard library is imported until the
command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._parser import EXIT_OK, SubParsers, command

if TYPE_CHECKING:
    from ..webhooks import WebhookReceiver

__all__ = ["add_parser", "app", "options", "serve"]


def add_parser(subparsers: SubParsers) -> None:
    """Add ``tarash webhooks`` and ``tarash webhooks serve``."""
    webhooks = subparsers.add_parser(
        "webhooks",
        help="receive provider webhooks",
        allow_abbrev=False,
        description="Receive providers' webhook deliveries and complete the jobs in the ledger.",
    )
    commands = webhooks.add_subparsers(dest="webhooks_command", metavar="{serve}", required=True)
    serve_ = commands.add_parser(
        "serve",
        help="run the webhook receiver (needs the webhooks extra: uvicorn)",
        allow_abbrev=False,
        description="Serve POST PATH/PROVIDER (e.g. /webhooks/fal): each delivery is verified by the "
        "provider's plugin, applied once (the job is completed in the ledger; retries and "
        "duplicates are ignored) and answered 200; a delivery that fails verification is "
        "answered 401. Submit jobs with webhook_url=https://your.host/webhooks/PROVIDER.",
    )
    serve_.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve_.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve_.add_argument("--path", default="/webhooks", help="mount path (default: /webhooks)")
    serve_.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="PROVIDER.NAME=VALUE",
        help="a verification setting, e.g. fal.jwks_url=URL or replicate.secret=whsec_...; repeatable",
    )
    serve_.add_argument("--ca-bundle", metavar="FILE", help="trust this CA for key set fetches (a proxy)")
    serve_.set_defaults(func=command("_webhooks", "serve"))


def options(values: list[str]) -> dict[str, dict[str, Any]]:
    """``provider.name=value`` settings as the receiver's ``options``."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ._errors import UsageError

    parsed: dict[str, dict[str, Any]] = {}
    for value in values:
        name, equals, setting = value.partition("=")
        provider, dot, key = name.partition(".")
        if not (equals and dot and provider and key):
            raise UsageError(f"--option {value!r}: expected PROVIDER.NAME=VALUE")
        parsed.setdefault(provider, {})[key] = setting
    return parsed


def app(path: str, settings: dict[str, dict[str, Any]], ca_bundle: str | None = None) -> Any:
    """An ASGI app serving the receiver below ``path`` (404 elsewhere)."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..webhooks import WebhookReceiver

    receiver = WebhookReceiver(options=settings, ca_bundle=ca_bundle)
    prefix = "/" + path.strip("/") if path.strip("/") else ""
    return _Mounted(receiver, prefix)


class _Mounted:
    """The receiver below ``prefix`` (what Starlette's ``Mount`` does, without Starlette)."""

    def __init__(self, receiver: WebhookReceiver, prefix: str) -> None:
        self.receiver = receiver
        self.prefix = prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if self.prefix and not (path == self.prefix or path.startswith(self.prefix + "/")):
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            scope = {**scope, "root_path": scope.get("root_path", "") + self.prefix}
        await self.receiver(scope, receive, send)


def serve(args: argparse.Namespace) -> int:
    """Run the receiver until interrupted."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ._errors import UsageError

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise UsageError(
            "tarash webhooks serve needs an ASGI server: pip install 'tarash-core[webhooks]'"
        ) from None
    settings = options(args.option)
    print(f"Receiving webhooks at http://{args.host}:{args.port}{args.path.rstrip('/')}/PROVIDER")
    uvicorn.run(app(args.path, settings, args.ca_bundle), host=args.host, port=args.port, log_level="info")
    return EXIT_OK
