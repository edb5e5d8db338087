"""Verify Replicate webhook deliveries (Standard Webhooks) and read them as typed events.

Replicate signs every delivery with the account's signing secret (``whsec_...``, from
``GET /v1/webhooks/default/secret``): headers ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, space separated). The
check is the ``standardwebhooks`` library's, which also refuses a timestamp more than five minutes
off. The body is the prediction, as ``GET /v1/predictions/{id}`` answers it::

    from tarash_replicate.webhooks import WebhookVerificationError, verify

    @app.post("/replicate")
    async def replicate_hook(request):
        try:
            event = verify(request.headers, await request.body(), secret=SIGNING_SECRET)
        except WebhookVerificationError:
            return Response(status_code=400)
        if event.state == "completed":
            download(event.output_urls, before=event.expires_at)
        return Response(status_code=200)

Deliveries are retried, and a retry keeps its ``webhook-id``: deduplicate on
``event.webhook_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from tarash.tarash_gateway.exceptions import WebhookVerificationError
from tarash.tarash_gateway.webhooks import WebhookEvent

from ._outputs import expires_at, output_urls
from ._spec import PROVIDER

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import Flow
    from tarash.tarash_gateway.webhooks import WebhookContext

__all__ = ["ReplicateWebhookEvent", "WebhookVerificationError", "verify", "verify_webhook"]

_STATES = {
    "starting": "queued",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
}


@attrs.frozen(kw_only=True)
class ReplicateWebhookEvent:
    """A verified delivery.

    Attributes:
        webhook_id: the delivery's ``webhook-id`` (the same for retries: deduplicate on it).
        timestamp: when Replicate sent it.
        prediction_id: the prediction (the Tarash job id).
        status: Replicate's status (``starting`` ... ``canceled``).
        state: the Tarash job state it means.
        output_urls: the output's URLs (empty before it succeeded).
        error: the prediction's error text, if it failed.
        created_at: when the prediction was created.
        expires_at: when Replicate deletes its inputs and outputs (created + 1 hour).
        prediction: the whole body.
    """

    webhook_id: str
    timestamp: datetime
    prediction_id: str
    status: str
    state: str
    output_urls: tuple[str, ...]
    error: str | None
    created_at: str | None
    expires_at: datetime | None
    prediction: Mapping[str, Any] = attrs.field(repr=False)


def _refuse(detail: str, reason: str = "malformed") -> WebhookVerificationError:
    return WebhookVerificationError(f"Replicate webhook refused: {detail}", reason=reason, provider=PROVIDER)


def verify(headers: Mapping[str, str], body: bytes | str, secret: str) -> ReplicateWebhookEvent:
    """Verify one delivery and return it as an event.

    :param headers: the request's headers (any case).
    :param body: the raw request body, exactly as received.
    :param secret: the signing secret (``whsec_...``).
    :raises WebhookVerificationError: missing header, bad or missing signature, timestamp more
        than five minutes off, malformed secret, or a body that is not a prediction.
    """
    from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
    from standardwebhooks.webhooks import WebhookVerificationError as Invalid

    try:
        hook = Webhook(secret)
    except (ValueError, RuntimeError, EmptyWebhookSecretError) as exc:
        raise _refuse(
            f"the signing secret is not a whsec_ secret ({type(exc).__name__})", "unknown_key"
        ) from None
    lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    try:
        payload = hook.verify(body, lowered)
    except Invalid as exc:
        text = str(exc)
        reason = (
            "missing_header"
            if "header" in text.lower()
            else "stale_timestamp"
            if "timestamp" in text.lower()
            else "bad_signature"
        )
        raise _refuse(text, reason) from None
    except ValueError as exc:
        raise _refuse(f"malformed signature or body ({type(exc).__name__})") from None
    if not isinstance(payload, Mapping) or not isinstance(payload.get("id"), str):
        raise _refuse("the body is not a prediction object")
    status = payload.get("status")
    state = _STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise _refuse(f"unknown prediction status {status!r}")
    error = payload.get("error")
    created = payload.get("created_at")
    return ReplicateWebhookEvent(
        webhook_id=lowered["webhook-id"],
        timestamp=datetime.fromtimestamp(float(lowered["webhook-timestamp"]), tz=timezone.utc),
        prediction_id=payload["id"],
        status=str(status),
        state=state,
        output_urls=tuple(output_urls(payload.get("output"))),
        error=error if isinstance(error, str) else None,
        created_at=created if isinstance(created, str) else None,
        expires_at=expires_at(payload),
        prediction=json.loads(json.dumps(payload)),
    )


def verify_webhook(
    provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext
) -> Flow[WebhookEvent]:
    """The ``verify_webhook`` hook's flow: the signing secret comes from the receiver's options
    (``WebhookReceiver(options={"replicate": {"secret": "whsec_..."}})``); nothing is fetched."""
    secret = context.options.get("secret")
    if not isinstance(secret, str) or not secret:
        raise _refuse(
            "no signing secret: pass options={'replicate': {'secret': 'whsec_...'}} to the receiver "
            "(GET /v1/webhooks/default/secret gives it)",
            "unknown_key",
        )
    event = verify(headers, body, secret)
    return WebhookEvent(
        provider=provider,
        job_id=event.prediction_id,
        state=event.state,  # type: ignore[arg-type]
        output=event.prediction,
        error=event.error,
        delivery_id=event.webhook_id,
        raw=event.prediction,
    )
    yield  # a flow that sends nothing
