"""The planted providers: ``GOOD``, ``VIDEO_ONLY`` and ``BLOCKING`` conform; every other one breaks
one rule of the contract."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPConnectionError, HTTPError
from tarash.tarash_gateway.plugin import CallContext, Capabilities, JobRef, Request, SubmittedJob, hookimpl

from .service import BlockingProvider, Flow, GoodProvider

GOOD = GoodProvider("kitgood")
BLOCKING = BlockingProvider("kitblocking")


class VideoOnly(GoodProvider):
    """Conforms with less: video only, no cancel, no progress claims."""

    modalities = ("video",)
    cancel = None  # type: ignore[assignment]

    def capabilities(self) -> Capabilities:
        return Capabilities()


VIDEO_ONLY = VideoOnly("kitvideo")


class ServiceError(Exception):
    """An SDK-style error that shows the request it failed on, headers included."""

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.args[0]} (request headers: {self.headers})"


class LeakError(GoodProvider):
    """Chains an error that renders the Authorization header to the Tarash error it raises."""

    def on_submit_error(self, exc: Exception, context: CallContext) -> Any:
        if isinstance(exc, HTTPError) and exc.status_code >= 500:
            raise HTTPError("HTTP 503", status_code=503) from ServiceError(
                "POST /jobs failed", {"Authorization": f"Bearer {context.api_key}"}
            )
        return super().on_submit_error(exc, context)


class LeakLog(GoodProvider):
    """Logs the Authorization header through a plain logger."""

    def log_submit(self, context: CallContext) -> None:
        logging.getLogger("kitleaklog").debug("POST /jobs Authorization: %s", context.api_key)


class StatusDict(GoodProvider):
    """Returns the provider's JSON instead of a JobStatus."""

    def job_status(self, answer: dict[str, Any]) -> Any:
        return answer


class FakeCancel(GoodProvider):
    """Claims cancel, and its cancel hook reports success without asking the service."""

    @hookimpl
    def cancel(self, config: Any, job: JobRef, context: CallContext) -> Any:
        return True


class OutOfOrder(GoodProvider):
    """Reports processing before queued."""

    steps = (("processing", None, 30.0), ("queued", 0, None), ("completed", None, 100.0))


class WrongTypes(GoodProvider):
    """Passes the provider's queue position string through."""

    def job_status(self, answer: dict[str, Any]) -> Any:
        position = answer.get("position")
        return super().job_status({**answer, "position": None if position is None else str(position)})


class NotJson(GoodProvider):
    """Keeps a datetime in the job data."""

    def job_data(self, context: CallContext, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}", "created": datetime.now(timezone.utc)}


class SecretJob(GoodProvider):
    """Keeps the API key in the job data, to poll with it later."""

    def job_data(self, context: CallContext, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}", "auth": context.api_key}


class Undeclared(GoodProvider):
    """Declares video only, although it generates images too (see the suite's make_config)."""

    modalities = ("video",)


class Overclaims(GoodProvider):
    """Declares image but cannot generate it."""

    def check_modality(self, modality: str) -> None:
        if modality == "image":
            raise NotImplementedError("this service has no image endpoint")


class BadMapping(GoodProvider):
    """Re-maps what core threw: a refused connection as sent, a 429 as a failed job."""

    def on_submit_error(self, exc: Exception, context: CallContext) -> Any:
        if isinstance(exc, HTTPConnectionError) and not exc.request_sent:
            raise HTTPConnectionError("connection refused", request_sent=True)
        return super().on_submit_error(exc, context)

    def on_status_error(self, exc: Exception) -> Any:
        if isinstance(exc, HTTPError) and exc.status_code == 429:
            raise GenerationFailedError("the service said: too many requests")
        raise exc


class NoCancelHook(GoodProvider):
    """Claims cancel without a cancel hook."""

    cancel = None  # type: ignore[assignment]


class OwnHttp(GoodProvider):
    """Polls with an HTTP client of its own instead of yielding the request to core."""

    def status_answer(self, job: JobRef, context: CallContext) -> Flow:
        import httpx

        url = f"{context.base_url}{job.data['status_path']}"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {context.api_key}"}, timeout=5)
        answer.raise_for_status()
        return answer.json()
        yield  # a flow that sends nothing through core


class Swallow(GoodProvider):
    """Swallows the HTTPError core throws into submit, and makes up a job."""

    def on_submit_error(self, exc: Exception, context: CallContext) -> Any:
        return SubmittedJob(job_id="job-made-up", data={"status_path": "/jobs/job-made-up"})


class KeyInRequest(GoodProvider):
    """Puts the key into a header of its own instead of relying on core's auth header."""

    def submit_request(self, context: CallContext) -> Request:
        headers = {"X-Api-Key": str(context.api_key)}
        return Request(method="POST", url="/jobs", json={"modality": context.modality}, headers=headers)


class BlockingRetry(BlockingProvider):
    """A blocking provider that sends its generation again when the answer was lost."""

    def generate(self, context: CallContext) -> Flow:
        request = Request(method="POST", url="/generate", json={"modality": context.modality})
        try:
            answer = yield request
        except HTTPConnectionError:
            answer = yield request
        data = answer.json()
        return self.response(context.modality, data["id"], data["url"])


LEAK_ERROR = LeakError("kitleakerror")
LEAK_LOG = LeakLog("kitleaklog")
STATUS_DICT = StatusDict("kitstatusdict")
FAKE_CANCEL = FakeCancel("kitfakecancel")
OUT_OF_ORDER = OutOfOrder("kitoutoforder")
WRONG_TYPES = WrongTypes("kitwrongtypes")
NOT_JSON = NotJson("kitnotjson")
SECRET_JOB = SecretJob("kitsecretjob")
UNDECLARED = Undeclared("kitundeclared")
OVERCLAIMS = Overclaims("kitoverclaims")
BAD_MAPPING = BadMapping("kitbadmapping")
NO_CANCEL_HOOK = NoCancelHook("kitnocancelhook")
OWN_HTTP = OwnHttp("kitownhttp")
SWALLOW = Swallow("kitswallow")
KEY_IN_REQUEST = KeyInRequest("kitkeyinrequest")
BLOCKING_RETRY = BlockingRetry("kitblockingretry")
