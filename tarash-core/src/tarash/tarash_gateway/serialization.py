"""Plain dicts and JSON for Tarash records, and back.

Works for every model in :mod:`tarash.tarash_gateway.models` (configs with nested fallbacks and
mock settings, requests, responses, progress updates, execution metadata), the plugin records in
:mod:`tarash.tarash_gateway.plugin` (``JobRef``, ``JobStatus``, ``SubmittedJob``...), and the job
records and handles of :mod:`tarash.tarash_gateway.jobs`::

    from tarash.tarash_gateway.serialization import from_json, to_json

    text = to_json(config)                       # no api_key in the output, ever
    config = from_json(VideoGenerationConfig, text)   # api_key is None: set it again

Rules: bytes (``MediaContent``) become base64 text; datetimes ISO 8601 text; tuples lists.
``api_key`` is never written, and data that contains one is refused. Requests are rebuilt through
their constructor, so unknown keys land in ``extra_params``; other records refuse unknown keys.
Loading is strict (no string where a number is expected) and any problem raises
:class:`~tarash.tarash_gateway.exceptions.ValidationError` listing each one with its path, e.g.
``Invalid VideoGenerationConfig: invalid value for type, expected int @ $.max_poll_attempts``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from ._codec import structure
from ._plain import parse_json, to_json_text, unstructure
from .exceptions import ValidationError

__all__ = ["from_dict", "from_json", "to_dict", "to_json"]

T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain JSON-safe data for a Tarash record (API keys omitted, known secrets scrubbed)."""
    if not attrs.has(type(obj)):
        raise ValidationError(f"to_dict expects a Tarash record, got {type(obj).__name__}", value=None)
    data: dict[str, Any] = unstructure(obj)
    return data


def from_dict(cls: type[T], data: Any) -> T:
    """Build ``cls`` from :func:`to_dict` data; raises ValidationError naming every bad path."""
    return structure(data, cls)


def to_json(obj: Any) -> str:
    """Compact JSON text for a Tarash record (see :func:`to_dict`)."""
    return to_json_text(to_dict(obj))


def from_json(cls: type[T], text: str | bytes) -> T:
    """Build ``cls`` from :func:`to_json` text; raises ValidationError for bad JSON or data."""
    return from_dict(cls, parse_json(text))
