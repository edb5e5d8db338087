"""Webhook deliveries: the typed event a provider plugin turns a delivery into, and a receiver.

A provider that can tell you a job finished (fal's ``fal_webhook``) sends an HTTP POST to a URL
you gave at submit. The provider's plugin verifies and parses it in its ``verify_webhook`` hook
(see :mod:`tarash.tarash_gateway.hookspecs`) into a :class:`WebhookEvent`; this module's
:class:`WebhookReceiver` is a plain ASGI app doing the rest::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from tarash.tarash_gateway.webhooks import WebhookReceiver

    def finished(event):
        print(event.provider, event.job_id, event.state)

    app = Starlette(routes=[Mount("/webhooks", app=WebhookReceiver(finished))])
    # fal then delivers to https://your.host/webhooks/fal

For each ``POST /{provider}`` the receiver reads the body (size-capped), asks the provider's
plugin to verify it, drops a delivery it already applied (same provider, job id and delivery id:
providers retry deliveries, so a receiver must be idempotent), applies the event once
(:func:`apply_event`: the job is completed in the ledger and a ``JobHandle.wait()`` or
``generate_*`` waiting for it in this process returns without another status poll), calls
``on_event`` if given and answers 200. A delivery that fails verification is answered 401 and
applied never; one whose application or ``on_event`` raised is answered 500 and forgotten, so the
provider's retry applies it again.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from ._redact import get_logger, is_secret_key, redacted_repr, register_secret
from .exceptions import (
    GenerationFailedError,
    HTTPError,
    ProviderNotFoundError,
    TarashException,
    WebhookVerificationError,
)

if TYPE_CHECKING:
    from ._gateway import Gateway
    from ._records import JobState
    from ._wire import Flow, Request, Response

__all__ = ["Send", "WebhookContext", "WebhookEvent", "WebhookReceiver", "apply_event"]

log = get_logger("tarash.webhooks")

#: How the receiver sends a request a plugin's verify flow yields (a key set fetch):
#: ``await send(provider, request)``; an HTTP error answer raises
#: :class:`~tarash.tarash_gateway.exceptions.HTTPError`.
Send = Callable[[str, "Request"], Awaitable["Response"]]
#: A ``verify_webhook`` implementation, called with keyword arguments.
Verifier = Callable[..., "Flow[WebhookEvent]"]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
DEFAULT_DEDUPE_CAPACITY = 100_000


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified delivery: what happened to which job.

    Attributes:
        provider: the provider that sent it.
        job_id: the provider's job id (the ``job_id`` of the submit's ``SubmittedJob``).
        state: the job's state: ``"completed"`` or ``"failed"`` for a completion delivery.
        output: the job's output as the provider sent it (the JSON a ``result`` call would read),
            for ``completed``.
        error: the provider's error text, for ``failed``.
        delivery_id: tells this event from the job's other events; retries of one event share it
            (``None``: the provider sends one event per job).
        raw: the parsed delivery body.
    """

    provider: str
    job_id: str
    state: JobState
    output: Any = None
    error: str | None = None
    delivery_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping, repr=False)


@attrs.frozen(kw_only=True)
class WebhookContext:
    """Passed to ``verify_webhook``.

    Attributes:
        provider: the provider the delivery was addressed to.
        now: the receiver's clock (unix seconds) when the delivery arrived: check timestamps
            against it.
        timeout: seconds the verification may spend on requests (a key set fetch).
        options: the receiver's settings for this provider (e.g. ``{"jwks_url": ...}``);
            values under secret-named keys (``secret``, ``*_token``...) are redacted in the repr.
    """

    provider: str
    now: float
    timeout: float = DEFAULT_TIMEOUT
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping, repr=redacted_repr)


@attrs.frozen
class _Answer:
    status: int
    body: Mapping[str, Any]
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _hook_verifier(provider: str) -> Verifier | None:
    """The ``verify_webhook`` flow of ``provider``'s plugin (on the default gateway), if it has one."""
    # lazy: a plugin importing this module at discovery loads no gateway
    from ._gateway import default_gateway

    host = default_gateway().host
    if not host.implements(provider, "verify_webhook"):
        return None
    return functools.partial(host.flow, provider, "verify_webhook")


def _record_outcome(gateway: Gateway, event: WebhookEvent) -> str:
    """Complete the event's job in ``gateway``'s ledger; returns what was done (for the log)."""
    # lazy: the handle, the gateway and the engine's inbox load at the first delivery, not when a
    # plugin imports this module
    from ._gateway import JobHandle
    from ._inbox import local_response
    from .models import ImageGenerationResponse, VideoGenerationResponse

    ledger = gateway.ledger()
    record = ledger.store.get(event.job_id) if ledger is not None else None
    if ledger is None or record is None or record.provider != event.provider:
        return "not in the ledger"
    if record.finished:
        return "already finished"
    if event.state == "failed":
        error = GenerationFailedError(
            event.error or f"{event.provider} reported the job failed",
            provider=record.provider,
            model=record.model,
            request_id=event.job_id,
            phase="poll",
        )
        ledger.finished(record.key, "failed", error=error).run()
        return "failed"
    if event.state == "cancelled":
        ledger.finished(record.key, "cancelled").run()
        return "cancelled"
    if event.state != "completed":
        return f"{event.state}: nothing to record"
    response = None
    if record.job is not None and record.config is not None:
        handle = JobHandle.from_record(record)
        response = local_response(gateway.host, handle.config, handle.job, event)
    expected = ImageGenerationResponse if record.modality == "image" else VideoGenerationResponse
    if not isinstance(response, expected):
        ledger.status(record.key, "completed", {"source": "webhook"})
        ledger.flush()
        return "completed; its result is fetched by the job's wait or resume"
    response = attrs.evolve(
        response, provider=response.provider or record.provider, model=response.model or record.model
    )
    ledger.finished(record.key, "completed", result=response).run()
    return "completed"


async def apply_event(event: WebhookEvent, gateway: Gateway | None = None) -> None:
    """Apply a verified event: complete its job in the ledger (result or error recorded,
    finished) when the job is there and unfinished, and wake the waits for it in this process.

    The result is read from the delivery (no request); when the delivery holds too little, the job
    is marked ``completed`` and its wait (or ``tarash jobs resume``) fetches the result.
    """
    if gateway is None:
        # lazy: a plugin importing this module at discovery loads no gateway
        from ._gateway import default_gateway

        gateway = default_gateway()
    # lazy: the engine's inbox loads at the first delivery, not when a plugin imports this module
    from ._inbox import INBOX

    done = await asyncio.to_thread(_record_outcome, gateway, event)
    log.info("Webhook: %s job %s %s (ledger: %s)", event.provider, event.job_id, event.state, done)
    INBOX.deliver(event)


class WebhookReceiver:
    """An ASGI app receiving provider webhooks at ``POST /{provider}`` (mount it anywhere).

    Args:
        on_event: called once per new verified event (after it was applied), with the
            :class:`WebhookEvent`; may be a coroutine function. If it (or applying) raises, the
            delivery is answered 500 and not remembered, so the provider's retry brings it again.
        apply: apply each new event with :func:`apply_event` (the default); ``False`` only
            verifies, dedupes and calls ``on_event``.
        send: sends a request a verify flow yields (see :data:`Send`); by default core's
            transport sends it (the default gateway's pools, within ``timeout``). A fetch that
            fails is answered 503, so the provider retries the delivery.
        options: per-provider settings handed to the hook as ``context.options``,
            e.g. ``{"fal": {"jwks_url": "..."}}``. String values under secret-named keys
            (``{"replicate": {"secret": "whsec_..."}}``) are registered as secrets, like API keys:
            scrubbed from every log line and error message.
        timeout: seconds a verification may spend on its requests.
        ca_bundle: a CA file the default ``send`` trusts instead of the system's (a proxy, a
            local server).
        max_body: larger deliveries are answered 413 unread.
        dedupe_capacity: how many applied deliveries are remembered (oldest forgotten first).
        verifier: ``provider -> verify_webhook implementation or None``; default: the hook of the
            installed plugin that registered the provider.
        clock: unix time source (tests).
    """

    def __init__(
        self,
        on_event: Callable[[WebhookEvent], Any] | None = None,
        *,
        apply: bool = True,
        send: Send | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        dedupe_capacity: int = DEFAULT_DEDUPE_CAPACITY,
        verifier: Callable[[str], Verifier | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.on_event = on_event
        self.apply = apply
        self.send = send
        self.options = {name: dict(value) for name, value in (options or {}).items()}
        for settings in self.options.values():
            for key, value in settings.items():
                if is_secret_key(key):
                    register_secret(value)
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.max_body = max_body
        self.dedupe_capacity = dedupe_capacity
        self.verifier = verifier or _hook_verifier
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self._stats = {"accepted": 0, "duplicates": 0, "rejected": 0, "failed": 0}

    @property
    def stats(self) -> dict[str, int]:
        """Deliveries ``accepted`` (applied), ``duplicates`` (ignored), ``rejected`` (failed
        verification) and ``failed`` (anything else answered non-2xx): a copy."""
        with self._lock:
            return dict(self._stats)

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    # -- the delivery, without ASGI ----------------------------------------------------------

    async def handle(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Verify and apply one delivery; returns the HTTP status and JSON body to answer."""
        try:
            verify = self.verifier(provider)
        except ProviderNotFoundError:
            verify = None
        if verify is None:
            self._count("failed")
            return 404, {"error": f"no webhook verifier for provider {provider!r}"}
        context = WebhookContext(
            provider=provider, now=self.clock(), timeout=self.timeout, options=self.options.get(provider, {})
        )
        try:
            flow = verify(provider=provider, headers=dict(headers), body=body, context=context)
            event = await asyncio.wait_for(self._drive(provider, flow), self.timeout)
        except WebhookVerificationError as exc:
            self._count("rejected")
            log.warning("Webhook for %s rejected (%s): %s", provider, exc.reason, exc.message)
            return 401, {"error": exc.message, "reason": exc.reason}
        except (TarashException, asyncio.TimeoutError) as exc:
            self._count("failed")
            log.warning("Webhook for %s not verified: %s: %s", provider, type(exc).__name__, exc)
            return 503, {"error": "verification could not complete; retry later"}
        except Exception as exc:
            # The plugin's verifier failed on this delivery (a bug, or input it did not expect):
            # refused, like any delivery it cannot verify, and the receiver goes on.
            self._count("rejected")
            log.error("verify_webhook of %s raised %s: %s", provider, type(exc).__name__, exc)
            return 400, {"error": "the delivery could not be verified", "reason": "verifier_error"}
        if not isinstance(event, WebhookEvent) or event.provider != provider:
            self._count("failed")
            log.error(
                "verify_webhook of %s returned %r, not a WebhookEvent of that provider", provider, event
            )
            return 500, {"error": "the provider's verifier returned no event"}
        key = (provider, event.job_id, event.delivery_id or "")
        with self._lock:
            if key in self._seen:
                self._stats["duplicates"] += 1
                return 200, {"status": "duplicate", "job_id": event.job_id}
            self._remember(key)
        try:
            if self.apply:
                await apply_event(event)
            outcome = self.on_event(event) if self.on_event is not None else None
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            with self._lock:
                self._seen.pop(key, None)
                self._stats["failed"] += 1
            log.exception(
                "Webhook callback failed for %s job %s; the provider will retry", provider, event.job_id
            )
            return 500, {"error": "the event could not be applied; retry later"}
        self._count("accepted")
        return 200, {"status": "accepted", "job_id": event.job_id}

    def _remember(self, key: tuple[str, str, str]) -> None:
        self._seen[key] = None
        while len(self._seen) > self.dedupe_capacity:
            self._seen.popitem(last=False)

    async def _drive(self, provider: str, flow: Flow[WebhookEvent]) -> WebhookEvent:
        if self.send is None:
            # lazy: a plugin importing this module at discovery loads no gateway
            from ._gateway import default_gateway

            event: WebhookEvent = await default_gateway().run_flow_async(
                flow, label=provider, timeout=self.timeout, ca_bundle=self.ca_bundle
            )
            return event
        try:
            request = next(flow)
            while True:
                try:
                    response = await self.send(provider, request)
                except HTTPError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(response)
        except StopIteration as stop:
            sent: WebhookEvent = stop.value
            return sent

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        answer = await self._http(scope, receive)
        data = json.dumps(answer.body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            *answer.headers,
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _http(self, scope: Scope, receive: Receive) -> _Answer:
        segments = [s for s in _route_path(scope).split("/") if s]
        if len(segments) != 1:
            return _Answer(404, {"error": "deliver to POST /{provider}"})
        if scope["method"] != "POST":
            return _Answer(405, {"error": "method not allowed"}, ((b"allow", b"POST"),))
        headers = _headers(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return _Answer(413, {"error": "delivery too large"})
        body = await _read_body(receive, self.max_body)
        if body is None:
            return _Answer(413, {"error": "delivery too large"})
        status, payload = await self.handle(segments[0], headers, body)
        return _Answer(status, payload)


def _route_path(scope: Mapping[str, Any]) -> str:
    """The path below the mount point (the way Starlette's ``get_route_path`` reads a scope)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: ASGISend) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
