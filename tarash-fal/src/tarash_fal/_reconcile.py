"""Finding the request of a submit whose answer was lost (the ``reconcile`` hook).

fal's queue echoes nothing a client chooses, but its platform API lists an account's requests per
model: ``GET https://api.fal.ai/v1/models/requests/by-endpoint`` (key ``Authorization: Key``;
https://fal.ai/docs/platform-apis/v1/models/requests/by-endpoint) with ``endpoint_id``,
``start``/``end`` (ISO 8601; ``start`` defaults to 24 hours ago), ``limit`` (at most 100),
``cursor`` and ``expand=payloads``; it answers ``{items: [{request_id, endpoint_id, sent_at,
started_at, ended_at, status_code, duration, json_input, json_output}], next_cursor, has_more}``,
sorted by end time. A request is matched on what was sent: the same endpoint, the same
``json_input.prompt``, ``sent_at`` in the window the lost submit could have reached fal.

* exactly one match: ``found`` (its status and result are then read from the queue as usual);
* anything else: ``cannot_tell``. fal documents the listing by end time with only end states
  (``success``, ``error``, ``user_error``) to filter on, so a request still queued or running may
  not be listed yet: an empty listing does not prove that nothing was created, and a later
  ``resume()`` asks again. Payloads are kept 30 days (none with ``X-Fal-Store-IO: 0``); an item
  without ``json_input`` cannot be matched.

``provider_config["platform_url"]`` points the lookup at another platform API root (a proxy, or
the fake server); the default is :data:`PLATFORM_URL`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from tarash.tarash_gateway.plugin import (
    CallContext,
    Flow,
    Reconciliation,
    Request,
    SubmissionIntent,
    SubmittedJob,
)

from ._provider import _REQUEST_ID, _url

__all__ = ["CLOCK_SKEW", "MAX_PAGES", "PLATFORM_URL", "reconcile"]

PLATFORM_URL = "https://api.fal.ai/v1"
#: Seconds added on both sides of the window, for the clocks of this host and fal's.
CLOCK_SKEW = 300.0
#: Pages (of 100 requests) read at most; past them the answer is ``cannot_tell``.
MAX_PAGES = 10


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def reconcile(config: Any, intent: SubmissionIntent, context: CallContext) -> Flow[Reconciliation]:
    """List the model's requests since ``intent.created_at`` and match the lost submit."""
    root = _url(config.provider_config.get("platform_url", PLATFORM_URL), "provider_config.platform_url")
    root = root.rstrip("/")
    prompt = intent.request.get("prompt")
    start = intent.created_at - timedelta(seconds=CLOCK_SKEW)
    end = intent.created_at + timedelta(seconds=intent.timeout + CLOCK_SKEW)
    params = {"endpoint_id": config.model, "start": _iso(start), "limit": "100", "expand": "payloads"}
    matches: list[Mapping[str, Any]] = []
    unreadable = 0
    for _ in range(MAX_PAGES):
        answer = yield Request(method="GET", url=f"{root}/models/requests/by-endpoint", params=params)
        page = answer.json()
        for item in page.get("items") or ():
            if not isinstance(item, Mapping) or item.get("endpoint_id") != config.model:
                continue
            sent = _moment(item.get("sent_at"))
            if sent is None or not start <= sent <= end:
                continue
            given = item.get("json_input")
            if not isinstance(given, Mapping):
                unreadable += 1
            elif given.get("prompt") == prompt and _REQUEST_ID.match(str(item.get("request_id", ""))):
                matches.append(item)
        if not page.get("has_more") or not page.get("next_cursor"):
            break
        params = {**params, "cursor": str(page["next_cursor"])}
    else:
        return Reconciliation(verdict="cannot_tell", detail=f"more than {MAX_PAGES} pages of requests")
    window = f"{config.model} requests sent {_iso(start)} .. {_iso(end)}"
    if len(matches) == 1:
        found = str(matches[0]["request_id"])
        return Reconciliation(
            verdict="found",
            job=SubmittedJob(job_id=found),
            detail=f"request {found} has the same endpoint and prompt ({window})",
        )
    if matches:
        ids = ", ".join(str(m["request_id"]) for m in matches)
        return Reconciliation(
            verdict="cannot_tell", detail=f"{len(matches)} requests have the same prompt: {ids}"
        )
    if unreadable:
        return Reconciliation(
            verdict="cannot_tell", detail=f"{unreadable} of the {window} were listed without their input"
        )
    return Reconciliation(
        verdict="cannot_tell",
        detail=f"none of the finished {window} has the same prompt; fal lists a request once it "
        "has ended, so one still queued or running would not show yet",
    )
