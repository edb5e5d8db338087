"""Webhook events of this process, and waits that end when one arrives.

The webhook receiver puts every verified event in :data:`INBOX`; a job's wait (the engine's
``wait_phase``) sleeps between status polls through :func:`sleep_or_event`, which returns as
soon as a terminal event (``completed``, ``failed`` or ``cancelled``) for its job is in the
inbox. So a wait in the process that runs the receiver ends on the delivery without another
status poll; polling stays the backstop for a delivery that never comes. :func:`local_response`
turns a completed event into the job's response without a request.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from . import _runtime as rt
from ._redact import get_logger
from ._wire import Request, Response
from .plugin import CallContext

if TYPE_CHECKING:
    import asyncio

    from ._plugins import PluginHost
    from .plugin import JobRef
    from .webhooks import WebhookEvent

__all__ = ["INBOX", "TERMINAL", "Inbox", "local_response", "sleep_or_event"]

log = get_logger("tarash.webhooks")

#: Event states that end a job's wait.
TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: Events kept (oldest forgotten first).
DEFAULT_CAPACITY = 10_000

Key = tuple[str, str]


class Inbox:
    """Terminal webhook events by (provider, job id), and the waits for them (thread-safe)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._events: OrderedDict[Key, WebhookEvent] = OrderedDict()
        self._changed = threading.Condition()
        self._waiters: dict[Key, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def deliver(self, event: WebhookEvent) -> bool:
        """Keep a terminal event and wake its job's waits; False (ignored) for any other state."""
        if event.state not in TERMINAL:
            return False
        key = (event.provider, event.job_id)
        with self._changed:
            self._events[key] = event
            self._events.move_to_end(key)
            while len(self._events) > self.capacity:
                self._events.popitem(last=False)
            waiters = self._waiters.pop(key, [])
            self._changed.notify_all()
        for loop, future in waiters:
            rt.settle_from_thread(loop, [(future, True, None)])  # False: its loop closed, nobody waits
        return True

    def get(self, provider: str, job_id: str) -> WebhookEvent | None:
        """The terminal event delivered for a job, if any."""
        with self._changed:
            return self._events.get((provider, job_id))

    def clear(self) -> None:
        with self._changed:
            self._events.clear()

    def wait(self, provider: str, job_id: str, seconds: float) -> WebhookEvent | None:
        """Block up to ``seconds`` for the job's terminal event."""
        key = (provider, job_id)
        with self._changed:
            self._changed.wait_for(lambda: key in self._events, timeout=max(seconds, 0.0))
            return self._events.get(key)

    async def wait_async(self, provider: str, job_id: str, seconds: float) -> WebhookEvent | None:
        """:meth:`wait` on the running event loop (the delivery may come from any thread)."""
        import asyncio  # lazy: loaded by then (a loop runs this); a sync generation never imports it

        key = (provider, job_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._changed:
            if key in self._events:
                return self._events[key]
            self._waiters.setdefault(key, []).append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), max(seconds, 0.0))
        except asyncio.TimeoutError:
            pass
        finally:
            with self._changed:
                waiting = self._waiters.get(key, [])
                if (loop, future) in waiting:
                    waiting.remove((loop, future))
                if not waiting:
                    self._waiters.pop(key, None)
        return self.get(provider, job_id)


#: The process's inbox: the webhook receiver delivers here, job waits listen here.
INBOX = Inbox()


def sleep_or_event(provider: str, job_id: str, seconds: float) -> rt.Flow[WebhookEvent | None]:
    """Sleep up to ``seconds``, ending early with the job's terminal webhook event."""
    event: WebhookEvent | None = yield rt.Call(
        INBOX.wait,
        INBOX.wait_async,
        {"provider": provider, "job_id": job_id, "seconds": seconds},
    )
    return event


def local_response(host: PluginHost, config: Any, job: JobRef, event: WebhookEvent) -> Any | None:
    """The job's response read from a completed event's output, with no request sent.

    The provider's ``result`` flow runs with its first request (the read of the job's output)
    answered by the delivery's ``output``, which the ``verify_webhook`` hook sets to the JSON that
    read returns. ``None`` when that is not enough (no output, the flow asks for more, or it
    raised): the caller then fetches the result as usual.
    """
    if event.state != "completed" or event.output is None:
        return None
    context = CallContext(provider=job.provider, modality=job.modality, timeout=1.0)
    flow = host.flow(job.provider, "result", config=config, job=job, context=context)
    try:
        step = next(flow)
        if not isinstance(step, Request):
            return None
        answer = Response(
            status_code=200,
            headers={"content-type": "application/json"},
            content=json.dumps(event.output).encode(),
            url=step.url,
        )
        flow.send(answer)
    except StopIteration as stop:
        return stop.value
    except Exception as exc:
        log.info(
            "%s job %s: its webhook output could not be read (%s: %s); fetching the result",
            job.provider,
            job.job_id,
            type(exc).__name__,
            exc,
        )
        return None
    finally:
        flow.close()
    return None
