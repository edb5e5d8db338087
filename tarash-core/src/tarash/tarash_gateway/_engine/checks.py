"""Checks before anything is sent: the request must be valid, JSON-safe and UTF-8, and its
intent durably recorded when the ledger is on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from .. import _runtime as rt
from .._budget import BudgetCheck
from ..exceptions import (
    ValidationError,
)
from ..models import (
    MediaContent,
)
from .attempt import Attempt

__all__ = ["check_request", "record_intent"]


def check_request(attempt: Attempt) -> None:
    """Refuse, before anything is recorded or sent, a request no provider should receive.

    * a prompt of only white space, or an empty prompt with no image or video to work from;
    * ``extra_params`` that would override a unified field (``prompt``) or the provider field a
      set unified field is mapped to (``duration`` for ``duration_seconds``), or that hold a value
      no provider can be sent (not JSON, not a finite number);
    * text that cannot be sent as UTF-8 JSON (a lone surrogate).
    """
    request = attempt.request
    prompt = request.prompt
    media = bool(request.image_list) or getattr(request, "video", None) is not None
    if prompt.strip() == "" and (prompt != "" or not media):
        raise ValidationError(
            "prompt is empty"
            + (" (only white space)" if prompt else "")
            + ": give a prompt, or an image or video for the model to work from",
            field="prompt",
            value=prompt,
        )
    extras = dict(request.extra_params)
    unified = {a.name for a in attrs.fields(type(request))} - {"extra_params"}
    clash = sorted(unified & set(extras))
    if clash:
        raise ValidationError(
            f"extra_params[{clash[0]!r}] would override the unified field {clash[0]}: set "
            f"{clash[0]}=... on the request instead",
            field=f"extra_params.{clash[0]}",
            value=extras[clash[0]],
        )
    _prefix, mappers = attempt.gateway.host.resolve_field_mappers(attempt.provider, attempt.model)
    for api_field, mapper in sorted((mappers or {}).items()):
        source = getattr(mapper, "source_field", None)
        if api_field in extras and source and getattr(request, source, None) not in (None, [], ()):
            raise ValidationError(
                f"extra_params[{api_field!r}] would override {source}, which {attempt.provider} "
                f"sends as {api_field!r}: set one of them, not both",
                field=f"extra_params.{api_field}",
                value=extras[api_field],
            )
    _plain_json(extras, "extra_params")
    _utf8(request, "request")


def _plain_json(value: Any, path: str) -> None:
    """Raise ValidationError naming the first value in ``extra_params`` no provider can be sent:
    a number that is not finite, or an object that is not JSON, media or a URL."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{where} must be a finite number, got {item!r}", field=where, value=item)
        if isinstance(item, Mapping):
            pending.extend((entry, f"{where}.{key}") for key, entry in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((entry, f"{where}[{index}]") for index, entry in enumerate(item))
        elif not (item is None or isinstance(item, (str, bool, int, float, MediaContent))):
            raise ValidationError(
                f"{where} cannot be sent: {type(item).__name__} is not JSON (use a URL, MediaContent "
                "or plain JSON values)",
                field=where,
                value=type(item).__name__,
            )


def _utf8(value: Any, path: str) -> None:
    """Raise ValidationError naming the first text in ``value`` that UTF-8 cannot encode (walked
    without recursion: values may nest deeply)."""
    pending: list[tuple[Any, str]] = [(value, path)]
    seen: set[int] = set()
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValidationError(
                    f"{where} cannot be sent: {exc.reason} at position {exc.start}",
                    field=where.removeprefix("request."),
                    value=None,
                ) from None
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        if attrs.has(type(item)):
            pending.extend((getattr(item, f.name), f"{where}.{f.name}") for f in attrs.fields(type(item)))
        elif isinstance(item, Mapping):
            for key, entry in item.items():
                pending.extend(((key, f"{where}.{key}"), (entry, f"{where}.{key}")))
        elif isinstance(item, (list, tuple)):
            pending.extend((entry, f"{where}[{index}]") for index, entry in enumerate(item))


def record_intent(attempt: Attempt) -> rt.Flow[None]:
    """Write the submit intent to the ledger (before anything is sent; fails closed)."""
    if attempt.ledger is not None:
        yield attempt.ledger.intent(
            attempt.ledger_key,
            provider=attempt.provider,
            model=attempt.model,
            modality=attempt.modality,
            config=attempt.config,
            request=attempt.request,
            cost=attempt.estimate,
            check=BudgetCheck(attempt, attempt.estimate),
        )
        attempt.intent_recorded = True
