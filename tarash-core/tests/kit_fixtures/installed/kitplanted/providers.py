"""The planted providers: ``GOOD`` and ``VIDEO_ONLY`` conform; every other one breaks one rule."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPConnectionError, HTTPError
from tarash.tarash_gateway.models import MediaContent
from tarash.tarash_gateway.plugin import Capabilities

from .service import GoodProvider

GOOD = GoodProvider("kitgood")


class VideoOnly(GoodProvider):
    """Conforms with less: video only, sync hooks only, no cancel, no progress claims."""

    modalities = ("video",)
    cancel = None
    submit_async = status_async = result_async = cancel_async = None

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
    """Chains an SDK error that renders the Authorization header to its Tarash error."""

    def fail(self, scenario: str, phase: str, config: Any) -> None:
        if phase == "submit" and scenario == "server_error":
            raise HTTPError("HTTP 503", status_code=503, phase="submit") from ServiceError(
                "POST /jobs failed", {"Authorization": f"Bearer {config.api_key}"}
            )
        super().fail(scenario, phase, config)


class LeakLog(GoodProvider):
    """Logs the Authorization header through a plain logger."""

    def log_submit(self, config: Any) -> None:
        logging.getLogger("kitleaklog").debug("POST /jobs Authorization: %s", config.api_key)


class StatusDict(GoodProvider):
    """Returns the provider's JSON instead of a JobStatus."""

    def job_status(self, state: str, position: int | None, percent: float | None, step: int) -> Any:
        return {"state": state, "queue_position": position, "progress": percent}


class FakeCancel(GoodProvider):
    """Claims cancel, and its cancel hook reports success without asking the service."""

    def cancel_job(self, job_id: str) -> bool:
        return True


class AsyncDiffers(GoodProvider):
    """The async result downloads the video; the sync one returns its URL."""

    def video(self, job_id: str, is_async: bool) -> Any:
        if is_async:
            return MediaContent(content=b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4")
        return super().video(job_id, is_async)


class OutOfOrder(GoodProvider):
    """Reports processing before queued."""

    steps = (("processing", None, 30.0), ("queued", 0, None), ("completed", None, 100.0))


class WrongTypes(GoodProvider):
    """Passes the provider's queue position string through."""

    def job_status(self, state: str, position: int | None, percent: float | None, step: int) -> Any:
        status = super().job_status(state, None, percent, step)
        return type(status)(
            state=status.state,
            progress_percent=percent,
            logs=status.logs,
            queue_position=None if position is None else str(position),
        )


class NotJson(GoodProvider):
    """Keeps a datetime in the job data."""

    def job_data(self, config: Any, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}", "created": datetime.now(timezone.utc)}


class SecretJob(GoodProvider):
    """Keeps the API key in the job data, to poll with it later."""

    def job_data(self, config: Any, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}", "auth": config.api_key}


class Undeclared(GoodProvider):
    """Declares video only, although it generates images too (see the suite's make_config)."""

    modalities = ("video",)


class Overclaims(GoodProvider):
    """Declares image but cannot generate it."""

    def check_modality(self, modality: str) -> None:
        if modality == "image":
            raise NotImplementedError("this service has no image endpoint")


class BadMapping(GoodProvider):
    """Maps a refused connection as sent, and a 429 as a failed job."""

    def fail(self, scenario: str, phase: str, config: Any) -> None:
        if phase == "connect" and scenario == "unreachable":
            raise HTTPConnectionError("connection refused", request_sent=True)
        if phase == "poll" and scenario == "rate_limited":
            raise GenerationFailedError("the service said: too many requests")
        super().fail(scenario, phase, config)


class NoCancelHook(GoodProvider):
    """Claims cancel without a cancel hook."""

    cancel = None
    cancel_async = None


LEAK_ERROR = LeakError("kitleakerror")
LEAK_LOG = LeakLog("kitleaklog")
STATUS_DICT = StatusDict("kitstatusdict")
FAKE_CANCEL = FakeCancel("kitfakecancel")
ASYNC_DIFFERS = AsyncDiffers("kitasyncdiffers")
OUT_OF_ORDER = OutOfOrder("kitoutoforder")
WRONG_TYPES = WrongTypes("kitwrongtypes")
NOT_JSON = NotJson("kitnotjson")
SECRET_JOB = SecretJob("kitsecretjob")
UNDECLARED = Undeclared("kitundeclared")
OVERCLAIMS = Overclaims("kitoverclaims")
BAD_MAPPING = BadMapping("kitbadmapping")
NO_CANCEL_HOOK = NoCancelHook("kitnocancelhook")
