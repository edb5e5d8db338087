"""Running a plugin's flow: core sends each request the flow describes, throws HTTP errors
into it and maps what escapes it to the error tree, with the phase and the deadline."""

from __future__ import annotations

import builtins
import time
from typing import TYPE_CHECKING, Any

import attrs

from .. import _runtime as rt
from .. import _transport as transport
from .._errors import normalize, scrub_chain
from .._handlers import Direct
from .._wire import Request
from ..exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    Phase,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
)
from ..plugin import CallContext, JobRef, Modality

if TYPE_CHECKING:
    from .._gateway import Gateway
from .attempt import Attempt, CallerError, provider_for

__all__ = ["GATEWAY_ANSWERS", "PHASES", "hook_flow", "run_flow", "standalone_flow"]

#: The answers a gateway in front of a provider gives in place of the provider's own (502 Bad
#: Gateway, 504 Gateway Timeout; Cloudflare's 520, the origin's answer unreadable, and 524, the
#: origin's answer late): the request may have reached the provider, which may have created the
#: job, and its answer was lost.
GATEWAY_ANSWERS = frozenset({502, 504, 520, 524})


def run_flow(attempt: Attempt, hook: str, phase: Phase, **kwargs: Any) -> rt.Flow[Any]:
    """Run the provider's ``hook`` flow: send each request it yields through core's transport,
    throw each error answer into it, and map whatever it raises to a typed TarashException.

    In the submit phase, once a billing request (not ``idempotent``) was accepted (a 2xx or 3xx
    answer) or its answer was lost, a job may exist: an error the flow raises after that, which
    would have core send the submit again or start a fallback (a retryable one), or which says
    only that the answer could not be used (a plain ``GenerationFailedError``), becomes
    ``UnknownSubmissionError``, whichever request of the flow it came from.
    """
    attempt.phase = phase
    context = kwargs["context"]
    sent = False  # a billing request may have reached the provider
    accepted = False  # and was accepted, or its answer was lost: a job may exist
    flow = None
    try:
        flow = attempt.gateway.host.flow(attempt.provider, hook, **kwargs)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(step, Direct):
                try:
                    reply = yield from _direct(attempt, step, phase)
                except (CallerError, TarashException):
                    raise
                except Exception as exc:
                    error = exc
                continue
            prepared = _prepare(attempt, step, context)
            if attempt.remaining() <= 0:
                raise _deadline(attempt, phase, sent)
            budget = attempt.remaining()
            limit = budget if step.timeout is None else min(step.timeout, budget)
            try:
                response = yield rt.Send(attempt.gateway.transport, prepared, limit)
            except transport.DeadlineReached:
                if limit >= budget:
                    raise _deadline(attempt, phase, sent or not step.idempotent) from None
                sent = sent or not step.idempotent
                accepted = accepted or not step.idempotent
                error = HTTPConnectionError(
                    f"no answer within the request's {limit:g}s", request_sent=not step.idempotent
                )
                continue
            except transport.AnswerTooLarge as exc:
                if phase == "submit" and not step.idempotent:
                    raise attempt.unknown_submission(exc.message) from None
                raise
            except HTTPConnectionError as exc:
                accepted = accepted or (exc.request_sent and not step.idempotent)
                if step.idempotent and exc.request_sent:
                    exc = HTTPConnectionError(
                        f"{exc.message} (a request that creates nothing: safe to send again)",
                        request_sent=False,
                    )
                sent = sent or exc.request_sent
                error = exc
                continue
            except TarashException:
                raise
            except Exception:
                sent = sent or not step.idempotent  # failed mid-exchange; the transport did not map it
                raise
            sent = sent or not step.idempotent
            made = response.status_code < 400 or response.status_code in GATEWAY_ANSWERS
            accepted = accepted or (not step.idempotent and made)  # the job may exist now
            if response.status_code >= 400:
                error = transport.http_error(response, attempt.provider)
            else:
                reply = response
    except (CallerError, GeneratorExit):
        raise
    except TarashException as exc:
        if phase == "submit" and accepted and _may_hide_a_job(attempt, exc):
            scrub_chain(exc)
            raise attempt.unknown_submission(
                f"it was accepted, then {type(exc).__name__}: {exc.message}", exc.raw_response
            ) from exc
        # Re-raised as it is: a plugin's own TarashException keeps the cause the plugin gave it.
        raise _located(attempt, exc, phase)  # noqa: B904
    except Exception as exc:
        # A timeout raised by code doing its own I/O (a seed handler, the escape hatch) came after
        # a request that may have been sent, as a read timeout does.
        if phase == "submit" and (sent or isinstance(exc, builtins.TimeoutError)):
            scrub_chain(exc)
            raise attempt.unknown_submission(
                f"its answer could not be read: {type(exc).__name__}: {exc}"
            ) from exc
        # normalize() makes ``exc`` the typed error's __cause__ (scrubbed of secrets).
        raise _located(attempt, exc, phase)  # noqa: B904
    finally:
        if flow is not None:
            flow.close()


#: The phase each flow hook runs in.
#: The phase of each hook (the status hook runs in the poll phase).
PHASES: dict[str, Phase] = {
    "submit": "submit",
    "status": "poll",
    "result": "result",
    "cancel": "cancel",
    "generate_video": "submit",
    "generate_image": "submit",
}


def hook_flow(
    gateway: Gateway,
    hook: str,
    config: Any,
    *,
    modality: Modality,
    request: Any = None,
    job: JobRef | None = None,
) -> rt.Flow[Any]:
    """One hook's flow, alone: no polling, retries, ledger or fallbacks (tests and tools)."""
    attempt = Attempt(
        gateway=gateway,
        config=config,
        request=request,
        modality=modality,
        number=1,
        provider=provider_for(config),
        on_progress=None,
        job=job,
    )
    subject = {"job": job} if job is not None else {"request": request}
    return (
        yield from run_flow(attempt, hook, PHASES[hook], config=config, context=attempt.context(), **subject)
    )


def standalone_flow(
    gateway: Gateway, flow: Any, label: str, *, timeout: float, ca_bundle: str | None = None
) -> rt.Flow[Any]:
    """A flow that belongs to no generation (a webhook key fetch, a schema download): its
    requests go to absolute URLs without a key, through the gateway's transport, within
    ``timeout``; error answers are thrown into it as ``HTTPError``."""
    deadline = time.monotonic() + timeout
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            prepared = transport.prepare(
                step,
                provider=label,
                base_url="",
                api_key=None,
                auth_header="",
                auth_scheme="",
                ca_bundle=ca_bundle,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{label} did not answer within {timeout:g}s", timeout_seconds=timeout)
            try:
                response = yield rt.Send(gateway.transport, prepared, remaining)
            except HTTPConnectionError as exc:
                error = exc
                continue
            if response.status_code >= 400:
                error = transport.http_error(response, label)
            else:
                reply = response
    except Exception as exc:
        scrub_chain(exc)
        raise
    finally:
        flow.close()


def _may_hide_a_job(attempt: Attempt, error: TarashException) -> bool:
    """Whether ``error``, raised by a submit flow after a billing request was accepted or its
    answer lost, must not be taken as the submit's failure: a retryable error (core would send the
    submit again or start a fallback) or a plain ``GenerationFailedError`` (the answer could not
    be used). A provider that honours idempotency keys may have its submit sent again after a
    connection error or an HTTP error answer: the key makes it the same job."""
    if isinstance(error, UnknownSubmissionError):
        return False
    if attempt.spec.capabilities.idempotency_key and isinstance(error, (HTTPConnectionError, HTTPError)):
        return False
    gateways = isinstance(error, HTTPError) and error.status_code in GATEWAY_ANSWERS
    return gateways or error.retryable or type(error) is GenerationFailedError


def _located(attempt: Attempt, exc: BaseException, phase: Phase) -> TarashException:
    """``exc`` as a typed error with phase, provider, model and job id (keeping a plugin's own
    cause; a foreign exception becomes the typed error's ``__cause__``)."""
    return normalize(
        exc,
        phase=phase,
        provider=attempt.provider,
        model=attempt.model,
        request_id=attempt.job.job_id if attempt.job else None,
    )


def _deadline(attempt: Attempt, phase: Phase, sent: bool) -> TarashException:
    if phase == "submit" and sent:
        return attempt.unknown_submission(f"no answer within the {attempt.config.timeout:g}s deadline")
    return attempt.timeout_error(f"no answer to {phase} before the deadline")


def _prepare(attempt: Attempt, step: Any, context: CallContext) -> transport.Prepared:
    if not isinstance(step, Request):
        raise GenerationFailedError(
            f"{attempt.provider} plugin's flow yielded {type(step).__name__}, expected a Request",
            retryable=False,
        )
    spec = attempt.spec
    return transport.prepare(
        step,
        provider=attempt.provider,
        base_url=context.base_url,
        api_key=attempt.api_key,
        auth_header=spec.auth_header,
        auth_scheme=spec.auth_scheme,
        ca_bundle=attempt.ca_bundle,
        max_bytes=attempt.max_bytes,
    )


def _direct(attempt: Attempt, step: Direct, phase: Phase) -> rt.Flow[Any]:
    """A call into code that does its own I/O (seed handlers, the escape hatch)."""
    kwargs = dict(step.kwargs)
    relay = _ProgressRelay(attempt) if step.progress else None
    if step.progress:
        kwargs["on_progress"] = relay if attempt.on_progress else None
    try:
        result = yield rt.Call(step.sync, step.async_, kwargs, timeout=attempt.remaining())
    except rt.DeadlineExceeded:
        if relay is not None and relay.raised is not None:
            raise CallerError(relay.raised) from None
        raise _deadline(attempt, phase, True) from None
    except Exception:
        if relay is not None and relay.raised is not None:
            raise CallerError(relay.raised) from None
        raise
    if relay is not None and relay.raised is not None:
        raise CallerError(relay.raised)
    return result


class _ProgressRelay:
    """The on_progress handed to blocking hooks: annotates updates and tracks caller errors."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.raised: BaseException | None = None

    def __call__(self, update: Any) -> Any:
        attempt = self.attempt
        try:
            update = attrs.evolve(
                update, attempt=attempt.number, provider=attempt.provider, model=attempt.model
            )
        except (TypeError, AttributeError):
            pass
        attempt.gateway.host.notify("progress_reported", update=update)
        callback = attempt.on_progress
        assert callback is not None
        if rt.is_async_fn(callback):
            return self._guard_async(callback(update))
        try:
            callback(update)
        except BaseException as exc:
            self.raised = exc
            raise
        return _Done()

    async def _guard_async(self, awaitable: Any) -> None:
        try:
            await awaitable
        except BaseException as exc:
            self.raised = exc
            raise


class _Done:
    """An already-finished awaitable, so handlers may ``await on_progress(u)`` or not."""

    def __await__(self) -> Any:
        return iter(())
