"""Durable jobs: submit now, collect later, survive a crash without paying twice.

:func:`submit_video` and :func:`submit_image` submit a generation and return a :class:`JobHandle`
at once. A handle knows everything needed to poll the job again: provider, model, the provider's
job id and polling data, and the config without its API key. It serialises to JSON
(:meth:`JobHandle.to_json`) and loads in another process (:meth:`JobHandle.from_json`). Waiting uses
the very functions ``generate_video`` is made of (``generate_video`` is submit + wait): retries of
status and result calls, the deadline, progress updates.

Every submission, by ``generate_*`` or by a handle, is recorded in the job ledger (a SQLite file by
default; see the durable-jobs guide for where it lives and how to switch it off). After a crash,
:func:`resume` collects every unfinished job without resubmitting it. A submit whose answer was
lost is reported as ``unknown`` (it may have been billed), never sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import attrs

from . import _engine as engine
from . import _runtime as rt
from ._gateway import default_gateway
from ._ledger import (
    JobEvent,
    JobRecord,
    JobStore,
    LedgerAdapter,
    SQLiteJobStore,
    active_ledger,
    active_store,
    set_ledger,
)
from ._redact import get_logger, redact
from .exceptions import (
    JobCancelledError,
    JobNotFinishedError,
    LedgerError,
    TarashException,
    UnknownSubmissionError,
)
from .models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from .plugin import JobRef, JobStatus, Modality

__all__ = [
    "JobEvent",
    "JobHandle",
    "JobNotFinishedError",
    "JobOutcome",
    "JobRecord",
    "JobStore",
    "LedgerError",
    "SQLiteJobStore",
    "get_job",
    "get_ledger",
    "list_jobs",
    "resume",
    "resume_async",
    "set_ledger",
    "submit_image",
    "submit_image_async",
    "submit_video",
    "submit_video_async",
]

log = get_logger("tarash.jobs")


def __getattr__(name: str) -> Any:
    """``PostgresJobStore`` is imported when first asked for: it needs the ``postgres`` extra."""
    if name == "PostgresJobStore":
        from ._pg_store import PostgresJobStore

        return PostgresJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Jobs :func:`resume` collects at the same time.
RESUME_CONCURRENCY = 8

AnyConfig = VideoGenerationConfig | ImageGenerationConfig
OnProgress = Callable[[Any], Any]
OutcomeState = Literal["completed", "failed", "cancelled", "unknown", "unfinished", "claimed"]


@attrs.frozen(kw_only=True)
class JobOutcome:
    """What :func:`resume` did with one job of the ledger.

    ``state``: ``completed`` (``response`` holds the result), ``failed`` or ``cancelled`` (``error``
    says why), ``unknown`` (the submit's answer was lost, or the provider cannot resume jobs from
    a new process: it may have been billed, was not resubmitted, and ``error`` says what to check),
    ``unfinished`` (not collected this time, e.g. still running at the timeout or the
    provider unreachable: a later resume tries again) or ``claimed`` (another live process is
    collecting it).
    """

    key: str
    provider: str
    model: str
    modality: Modality
    job_id: str | None
    state: OutcomeState
    response: VideoGenerationResponse | ImageGenerationResponse | None = None
    error: TarashException | None = None


# ----------------------------------------------------------------------------------------------
# Handles
# ----------------------------------------------------------------------------------------------


def _with_key(config: AnyConfig, api_key: str | None) -> AnyConfig:
    """``config`` with ``api_key`` when given (else core resolves the key at each call)."""
    return attrs.evolve(config, api_key=api_key) if api_key else config


def _ended_state(attempt: engine.Attempt, error: TarashException) -> Literal["failed", "cancelled"] | None:
    """How ``error`` ends the job for good (failed, cancelled); None if a later try may work."""
    if isinstance(error, JobCancelledError) or attempt.state == "cancelled":
        return "cancelled"
    if attempt.state == "failed":
        return "failed"
    if attempt.state == "completed" and error.phase == "result" and not error.retryable:
        return "failed"
    return None


def _collect(attempt: engine.Attempt, flow: rt.Flow[Any]) -> rt.Flow[Any]:
    """Run a flow that ends with the job's response; record its end in the ledger."""
    try:
        response = yield from flow
    except engine.CallerError as exc:
        raise exc.original from None
    except TarashException as exc:
        ended = _ended_state(attempt, exc)
        if ended is not None:
            engine.ledger_finish(attempt, ended, error=exc)
        raise
    response = attrs.evolve(
        response,
        provider=response.provider or attempt.provider,
        model=response.model or attempt.model,
    )
    engine.ledger_finish(attempt, "completed", result=response)
    return response


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
    config: VideoGenerationConfig | ImageGenerationConfig

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
        from .serialization import to_dict

        return to_dict(self)

    def to_json(self) -> str:
        """JSON text for the handle (no API key)."""
        from .serialization import to_json

        return to_json(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], api_key: str | None = None) -> JobHandle:
        """Load a handle; the key is ``api_key`` or else the provider's environment variable."""
        from .serialization import from_dict

        handle = from_dict(cls, data)
        return attrs.evolve(handle, config=_with_key(handle.config, api_key))

    @classmethod
    def from_json(cls, text: str | bytes, api_key: str | None = None) -> JobHandle:
        """Load a handle from :meth:`to_json` text (see :meth:`from_dict` for the key)."""
        from ._converters import parse_json

        return cls.from_dict(parse_json(text), api_key=api_key)

    @classmethod
    def from_record(cls, record: JobRecord, api_key: str | None = None) -> JobHandle:
        """A handle for a ledger record (raises LedgerError when it has no job id or config)."""
        from .serialization import from_dict

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

    # -- calls -----------------------------------------------------------------------------

    def _attempt(
        self,
        on_progress: OnProgress | None = None,
        timeout: float | None = None,
        ledger: LedgerAdapter | None = None,
    ) -> engine.Attempt:
        config = self.config if timeout is None else attrs.evolve(self.config, timeout=timeout)
        return engine.Attempt(
            gateway=default_gateway(),
            config=config,
            request=None,
            modality=self.job.modality,
            number=1,
            provider=self.job.provider,
            on_progress=on_progress,
            ledger=ledger if ledger is not None else active_ledger(),
            ledger_key=self.key,
            job=self.job,
            intent_recorded=True,
        )

    def _status_flow(self) -> rt.Flow[JobStatus]:
        status = yield from engine.poll_status(self._attempt())
        return attrs.evolve(status, raw=redact(dict(status.raw)))

    def _result_flow(self) -> rt.Flow[Any]:
        attempt = self._attempt()

        def fetch() -> rt.Flow[Any]:
            status = yield from engine.poll_status(attempt)
            engine.raise_for_state(attempt, status)
            if status.state != "completed":
                raise JobNotFinishedError(
                    f"Job {self.job_id} at {self.provider} is {status.state}, not completed",
                    state=status.state,
                    provider=self.provider,
                    model=self.model,
                    request_id=self.job_id,
                )
            return (yield from engine.fetch_result(attempt))

        return (yield from _collect(attempt, fetch()))

    def _wait_flow(self, on_progress: OnProgress | None, timeout: float | None) -> rt.Flow[Any]:
        ledger = active_ledger()
        attempt = self._attempt(on_progress, timeout, ledger)
        claimed = False
        if ledger is not None:
            record = ledger.store.get(self.key)
            if record is not None and not record.finished:
                claimed = ledger.claim(record)
                if not claimed:
                    log.info(
                        "Job %s is being collected by another process (%s); waiting too",
                        self.job_id,
                        record.owner,
                    )
        try:
            response = yield from _collect(attempt, engine.wait_phase(attempt))
            yield from engine.announce_completed(attempt, response)
            return response
        finally:
            if claimed and ledger is not None:
                ledger.release(self.key)

    def _cancel_flow(self) -> rt.Flow[bool]:
        attempt = self._attempt()
        yield from engine.cancel_job(attempt, "cancelled by the caller")
        if attempt.cancel_status == "failed":
            raise TarashException(
                f"Cancel of job {self.job_id} failed: {attempt.cancel_error}",
                provider=self.provider,
                model=self.model,
                request_id=self.job_id,
                phase="cancel",
            )
        if attempt.cancel_status == "cancelled":
            engine.ledger_finish(attempt, "cancelled")
            return True
        return False

    def status(self) -> JobStatus:
        """One status call (retried on transient errors); ``raw`` is redacted."""
        return rt.drive_sync(self._status_flow(), default_gateway().background)

    async def status_async(self) -> JobStatus:
        """Async :meth:`status`."""
        return await rt.drive_async(self._status_flow())

    def result(self) -> Any:
        """The response of a completed job (one status call, then the result).

        Raises JobNotFinishedError while it is queued or processing, and the job's typed error
        (e.g. GenerationFailedError, JobCancelledError) when it failed or was cancelled.
        """
        return rt.drive_sync(self._result_flow(), default_gateway().background)

    async def result_async(self) -> Any:
        """Async :meth:`result`."""
        return await rt.drive_async(self._result_flow())

    def wait(self, on_progress: OnProgress | None = None, timeout: float | None = None) -> Any:
        """Poll until the job ends and return its response.

        ``timeout`` (seconds, default ``config.timeout``) counts from now. On TimeoutError the job
        keeps running. ``on_progress`` gets the same updates as with ``generate_video``.
        """
        return rt.drive_sync(self._wait_flow(on_progress, timeout), default_gateway().background)

    async def wait_async(self, on_progress: OnProgress | None = None, timeout: float | None = None) -> Any:
        """Async :meth:`wait`; cancelling the task stops waiting but not the job."""
        return await rt.drive_async(self._wait_flow(on_progress, timeout))

    def cancel(self) -> bool:
        """Ask the provider to cancel the job.

        True when the provider accepted (the ledger marks the job cancelled), False when it cannot
        cancel jobs; raises TarashException (phase ``cancel``) when the cancel call failed.
        """
        return rt.drive_sync(self._cancel_flow(), default_gateway().background)

    async def cancel_async(self) -> bool:
        """Async :meth:`cancel`."""
        return await rt.drive_async(self._cancel_flow())


# ----------------------------------------------------------------------------------------------
# Submitting
# ----------------------------------------------------------------------------------------------


def _submit_flow(config: Any, request: Any, modality: Modality) -> rt.Flow[JobHandle]:
    gateway = default_gateway()
    ledger = gateway.ledger()
    attempt = yield from engine.submit_job(gateway, config, request, modality)
    assert attempt.job is not None
    if ledger is not None:
        ledger.release(attempt.ledger_key)
    return JobHandle(
        key=attempt.ledger_key,
        job=attempt.job,
        config=attrs.evolve(attempt.config, fallback_configs=None),
    )


def submit_video(config: VideoGenerationConfig, request: VideoGenerationRequest) -> JobHandle:
    """Submit a video generation and return its handle without waiting.

    The same submit rules as ``generate_video``: a submit whose answer was lost raises
    UnknownSubmissionError and is never resent; a retryable submit failure moves on to the next
    fallback config. Raises UnsupportedModalityError for providers without lifecycle hooks.
    """
    return rt.drive_sync(_submit_flow(config, request, "video"), default_gateway().background)


async def submit_video_async(config: VideoGenerationConfig, request: VideoGenerationRequest) -> JobHandle:
    """Async :func:`submit_video`."""
    return await rt.drive_async(_submit_flow(config, request, "video"))


def submit_image(config: ImageGenerationConfig, request: ImageGenerationRequest) -> JobHandle:
    """Submit an image generation and return its handle (see :func:`submit_video`)."""
    return rt.drive_sync(_submit_flow(config, request, "image"), default_gateway().background)


async def submit_image_async(config: ImageGenerationConfig, request: ImageGenerationRequest) -> JobHandle:
    """Async :func:`submit_image`."""
    return await rt.drive_async(_submit_flow(config, request, "image"))


# ----------------------------------------------------------------------------------------------
# The ledger: list, get, resume
# ----------------------------------------------------------------------------------------------


def get_ledger() -> JobStore | None:
    """The job store in effect (opened on first use), or None when the ledger is off."""
    return active_store()


def _require_ledger() -> LedgerAdapter:
    ledger = active_ledger()
    if ledger is None:
        raise LedgerError(
            "The job ledger is off (TARASH_LEDGER=off, set_ledger('off'), or its "
            "file cannot be written); no jobs are recorded"
        )
    return ledger


def list_jobs(state: str | None = None) -> list[JobRecord]:
    """Every job in the ledger, oldest first; ``state`` filters (``"unfinished"``: uncollected)."""
    return _require_ledger().store.records(state)


def get_job(key: str) -> JobRecord | None:
    """The ledger record whose key, or provider job id, is ``key``; None when there is none."""
    return _require_ledger().store.get(key)


def _unknown_message(record: JobRecord) -> str:
    when = record.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if record.provider == "mock":
        advice = "Mock jobs are never billed: nothing to do."
    else:
        advice = (
            f"Look for a {record.model} job created around {when} in {record.provider}'s "
            "dashboard or job list, and cancel or use it there (see the durable-jobs guide)."
        )
    return (
        f"The submit to {record.provider} at {when} was interrupted before its job id was "
        f"recorded: unknown, may have been billed. It was not resubmitted. {advice} "
        f"Ledger key: {record.key}."
    )


def _resume_flow(
    ledger: LedgerAdapter, record: JobRecord, timeout: float | None, on_progress: OnProgress | None
) -> rt.Flow[JobOutcome]:
    def outcome(state: OutcomeState, **fields: Any) -> JobOutcome:
        return JobOutcome(
            key=record.key,
            provider=record.provider,
            model=record.model,
            modality=record.modality,
            job_id=record.job_id,
            state=state,
            **fields,
        )

    if not ledger.claim(record):
        return outcome("claimed")
    if record.job_id is None:
        error = UnknownSubmissionError(_unknown_message(record), provider=record.provider, model=record.model)
        ledger.finished(record.key, "unknown", error=error)
        return outcome("unknown", error=error)
    if not _resumable(record.provider):
        not_polled = TarashException(
            f"{record.provider} cannot continue job {record.job_id} from a new process (its plugin "
            "declares Capabilities(resume=False)), so it was not polled. It may still run and be "
            f"billed: look for it in {record.provider}'s dashboard or job list. "
            f"Ledger key: {record.key}.",
            provider=record.provider,
            model=record.model,
            request_id=record.job_id,
            phase="status",
        )
        ledger.finished(record.key, "unknown", error=not_polled)
        return outcome("unknown", error=not_polled)
    try:
        handle = JobHandle.from_record(record)
    except TarashException as exc:
        ledger.release(record.key)
        return outcome("unfinished", error=exc)
    attempt = handle._attempt(on_progress, timeout, ledger)
    if (record.cancel or {}).get("outcome") == "failed":
        # Abandoned with an unconfirmed cancel: the caller did not want this job. Cancel it
        # now; collect it only if it had finished meanwhile (then it is paid for).
        yield from engine.cancel_job(attempt, "resume: the earlier cancel was not confirmed")
        if attempt.cancel_status == "cancelled":
            engine.ledger_finish(attempt, "cancelled")
            return outcome("cancelled")
        if attempt.cancel_status == "failed":
            ledger.release(record.key)
            unconfirmed = TarashException(
                f"Cancel of job {record.job_id} at {record.provider} still not confirmed: "
                f"{attempt.cancel_error}",
                provider=record.provider,
                model=record.model,
                request_id=record.job_id,
                phase="cancel",
            )
            return outcome("unfinished", error=unconfirmed)
    try:
        response = yield from _collect(attempt, engine.wait_phase(attempt))
        yield from engine.announce_completed(attempt, response)
    except TarashException as exc:
        ended = _ended_state(attempt, exc)
        return outcome(ended if ended is not None else "unfinished", error=exc)
    finally:
        ledger.release(record.key)
    return outcome("completed", response=response)


def _resumable(provider: str) -> bool:
    """False only when the installed provider declares it cannot resume jobs."""
    try:
        spec, _ = default_gateway().host.entry_plugin(provider)
    except TarashException:
        return True
    return spec.capabilities.resume


def _to_resume(job_id: str | None) -> tuple[LedgerAdapter, list[JobRecord]]:
    ledger = _require_ledger()
    if job_id is None:
        return ledger, ledger.store.records("unfinished")
    record = ledger.store.get(job_id)
    if record is None:
        raise LedgerError(f"No job {job_id!r} in the ledger ({ledger.store!r})")
    return ledger, [] if record.finished else [record]


def resume(
    job_id: str | None = None,
    *,
    timeout: float | None = None,
    on_progress: OnProgress | None = None,
) -> list[JobOutcome]:
    """Collect every unfinished job in the ledger (or the one whose key or job id is ``job_id``).

    Nothing is ever resubmitted. Jobs are polled again from their recorded job id, several at a
    time, each for ``timeout`` seconds from now (default: its config's timeout); a job that is
    still running then is left ``unfinished``, not cancelled. A submission interrupted before its
    job id was recorded is reported ``unknown`` (it may have been billed), as is a job of a provider
    declaring ``Capabilities(resume=False)`` (not polled). Jobs another live process is collecting
    are reported ``claimed`` and left alone.
    """
    ledger, records = _to_resume(job_id)
    if not records:
        return []

    def run(record: JobRecord) -> JobOutcome:
        return rt.drive_sync(_resume_flow(ledger, record, timeout, on_progress), default_gateway().background)

    workers = min(RESUME_CONCURRENCY, len(records))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tarash-resume") as pool:
        return list(pool.map(run, records))


async def resume_async(
    job_id: str | None = None,
    *,
    timeout: float | None = None,
    on_progress: OnProgress | None = None,
) -> list[JobOutcome]:
    """Async :func:`resume`."""
    ledger, records = _to_resume(job_id)
    limit = asyncio.Semaphore(RESUME_CONCURRENCY)

    async def run(record: JobRecord) -> JobOutcome:
        async with limit:
            return await rt.drive_async(_resume_flow(ledger, record, timeout, on_progress))

    return list(await asyncio.gather(*(run(record) for record in records)))
