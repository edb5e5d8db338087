"""Finding the prediction of a create whose answer was lost (the ``reconcile`` hook).

Replicate documents ``GET /v1/predictions``: every prediction of the token's account, API and web,
most recent first, 100 a page, ``next``/``previous`` cursor URLs, each with its ``id``, ``model``,
``version``, ``input``, ``source`` (``api``/``web``), ``status``, ``created_at`` and
``data_removed``; ``created_after`` (inclusive) and ``created_before`` narrow it by creation time
(replicate-python-beta ``predictions.list``, ``PredictionListParams``). A create carries nothing
Replicate echoes as a client-chosen id, so a prediction is matched on what was sent: the same
model (or version), ``source`` ``api`` and the same ``input.prompt``, created in the window the
lost create could have reached Replicate.

* exactly one match: ``found``;
* no match, and no prediction of that model in the window had its data removed: ``not_found``
  (the listing covers unfinished predictions too);
* several matches, removed inputs (API predictions' inputs are deleted after an hour), or more
  pages than :data:`MAX_PAGES`: ``cannot_tell``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tarash.tarash_gateway.plugin import CallContext, Flow, Reconciliation, Request, SubmissionIntent

from ._flows import submitted_job
from ._payload import ModelRef, parse_model

__all__ = ["CLOCK_SKEW", "MAX_PAGES", "reconcile"]

#: Seconds added on both sides of the window, for the clocks of this host and Replicate's.
CLOCK_SKEW = 300.0
#: Pages (of 100 predictions) read at most; past them the answer is ``cannot_tell``.
MAX_PAGES = 10


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _same_model(prediction: Mapping[str, Any], ref: ModelRef) -> bool:
    if ref.version is not None:
        return prediction.get("version") == ref.version
    return prediction.get("model") == ref.slug


def reconcile(config: Any, intent: SubmissionIntent, context: CallContext) -> Flow[Reconciliation]:
    """List the predictions created around ``intent.created_at`` and match the lost create."""
    ref = parse_model(config.model)
    prompt = intent.request.get("prompt")
    start = intent.created_at - timedelta(seconds=CLOCK_SKEW)
    end = intent.created_at + timedelta(seconds=intent.timeout + CLOCK_SKEW)
    window = f"{config.model} predictions created {_iso(start)} .. {_iso(end)}"
    params: dict[str, str] = {"created_after": _iso(start), "created_before": _iso(end)}
    matches: list[Mapping[str, Any]] = []
    removed = 0
    for _ in range(MAX_PAGES):
        answer = yield Request(method="GET", url="/v1/predictions", params=params)
        page = answer.json()
        for prediction in page.get("results") or ():
            if not isinstance(prediction, Mapping) or not _same_model(prediction, ref):
                continue
            if prediction.get("source", "api") != "api":
                continue
            if prediction.get("data_removed"):
                removed += 1
            elif (prediction.get("input") or {}).get("prompt") == prompt:
                matches.append(prediction)
        following = page.get("next")
        if not following:
            break
        params = dict(parse_qsl(urlsplit(str(following)).query))
    else:
        return Reconciliation(
            verdict="cannot_tell", detail=f"more than {MAX_PAGES} pages of predictions to search"
        )
    if len(matches) == 1:
        found = matches[0]
        return Reconciliation(
            verdict="found",
            job=submitted_job(found, config.model, inline=False),
            detail=f"prediction {found.get('id')} has the same model and prompt ({window})",
        )
    if matches:
        ids = ", ".join(str(m.get("id")) for m in matches)
        return Reconciliation(
            verdict="cannot_tell", detail=f"{len(matches)} predictions have the same prompt: {ids}"
        )
    if removed:
        return Reconciliation(
            verdict="cannot_tell",
            detail=f"{removed} of the {window} had their input removed (Replicate keeps it an hour)",
        )
    return Reconciliation(verdict="not_found", detail=f"none of the {window} has the same prompt")
