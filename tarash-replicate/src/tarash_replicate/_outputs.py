"""A prediction's outputs: their URLs, and when Replicate deletes them (one hour after creation).

https://replicate.com/docs/topics/predictions/data-retention: "For predictions created through
the API, all input parameters, output values, output files, and logs are automatically removed
after an hour, by default."
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ._spec import RETENTION

__all__ = ["expires_at", "output_urls"]


def output_urls(output: Any) -> list[str]:
    """Every URL in a prediction's ``output`` (a URL, a list of them, or an object of them)."""
    if isinstance(output, str):
        return [output] if output.startswith(("https://", "http://", "data:")) else []
    if isinstance(output, list):
        return [url for item in output for url in output_urls(item)]
    if isinstance(output, Mapping):
        return [url for item in output.values() for url in output_urls(item)]
    return []


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, tail = text.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def expires_at(source: Any) -> datetime | None:
    """When the outputs of a Replicate prediction are deleted: its ``created_at`` + 1 hour.

    ``source`` is a Tarash response from Replicate (its ``raw_response`` is the prediction), a
    prediction object (a mapping with ``created_at``), a webhook event, or a ``JobRef``.
    ``None`` when the creation time is unknown.
    """
    created = getattr(source, "created_at", None)
    if created is None:
        for holder in (getattr(source, "raw_response", None), getattr(source, "data", None), source):
            if isinstance(holder, Mapping) and holder.get("created_at"):
                created = holder["created_at"]
                break
    moment = created if isinstance(created, datetime) else _parse(created)
    return None if moment is None else moment + RETENTION
