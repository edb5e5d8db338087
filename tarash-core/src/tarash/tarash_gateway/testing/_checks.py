"""Pure checks used by the conformance kit; each returns a list of problems (empty: conforms)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import TarashException
from ..models import (
    ImageGenerationResponse,
    ImageGenerationUpdate,
    MediaContent,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)
from ..plugin import Capabilities

__all__ = [
    "MEDIA_SCHEMES",
    "STATUS_ORDER",
    "exception_surfaces",
    "json_problems",
    "leaks",
    "media_kind",
    "progress_problems",
    "response_problems",
    "response_surfaces",
    "to_text",
]

STATUS_ORDER = {"queued": 0, "processing": 1, "completed": 2}
MEDIA_SCHEMES = ("http", "https", "file", "data")


def media_kind(value: Any) -> str:
    """``"MediaContent(video/mp4)"`` or the URL scheme of a media value."""
    if isinstance(value, MediaContent):
        return f"MediaContent({value.content_type})"
    if isinstance(value, str):
        return f"{urlsplit(value).scheme or 'relative'} URL"
    return type(value).__name__


def response_problems(response: Any, *, modality: str, provider: str) -> list[str]:
    """A finished generation's response, as every caller relies on it."""
    expected = VideoGenerationResponse if modality == "video" else ImageGenerationResponse
    if not isinstance(response, expected):
        return [f"returned {type(response).__name__}, expected {expected.__name__}"]
    problems = []
    if not response.request_id:
        problems.append("response.request_id is empty")
    if response.status != "completed":
        problems.append(f"response.status is {response.status!r}, expected 'completed'")
    if response.provider != provider:
        problems.append(f"response.provider is {response.provider!r}, expected {provider!r}")
    meta = response.execution_metadata
    if meta is None or meta.successful_attempt != 1:
        problems.append("execution_metadata does not record a successful first attempt")
    media = [response.video] if isinstance(response, VideoGenerationResponse) else response.images
    for item in media:
        if isinstance(item, MediaContent):
            if not item.content:
                problems.append("MediaContent output is empty")
        elif not isinstance(item, str) or urlsplit(item).scheme not in MEDIA_SCHEMES:
            problems.append(
                f"output {item!r:.80} is neither MediaContent nor a URL with a scheme in {MEDIA_SCHEMES}"
            )
    return problems


def progress_problems(
    updates: Sequence[Any],
    *,
    modality: str,
    provider: str,
    capabilities: Capabilities,
    response: Any,
) -> list[str]:
    """The progress contract: typed updates, statuses in order, capabilities honoured."""
    expected = VideoGenerationUpdate if modality == "video" else ImageGenerationUpdate
    if not updates:
        return ["no progress update was delivered (core reports at least queued and completed)"]
    problems: list[str] = []
    rank = -1
    last_percent = -1.0
    for index, update in enumerate(updates):
        where = f"update #{index + 1} ({getattr(update, 'status', '?')})"
        if not isinstance(update, expected):
            problems.append(f"{where} is a {type(update).__name__}, expected {expected.__name__}")
            continue
        if not isinstance(update.request_id, str) or not update.request_id:
            problems.append(f"{where} has no request_id")
        if not isinstance(update.attempt, int) or isinstance(update.attempt, bool) or update.attempt != 1:
            problems.append(f"{where} has attempt={update.attempt!r}, expected the int 1")
        if update.provider != provider:
            problems.append(f"{where} has provider={update.provider!r}, expected {provider!r}")
        status_rank = STATUS_ORDER.get(update.status)
        if status_rank is None:
            problems.append(f"{where} has status {update.status!r} in a successful generation")
        elif status_rank < rank:
            previous = next(s for s, r in STATUS_ORDER.items() if r == rank)
            problems.append(
                f"{where}: status went back from {previous!r} to {update.status!r}; "
                "statuses must go queued* -> processing* -> completed"
            )
        else:
            rank = status_rank
        position = update.queue_position
        if position is not None and (
            not isinstance(position, int) or isinstance(position, bool) or position < 0
        ):
            problems.append(f"{where} has queue_position={position!r}, expected an int >= 0 or None")
        percent = update.progress_percent
        if percent is not None and update.status == "processing":
            if percent < last_percent:
                problems.append(f"{where}: progress_percent went down from {last_percent} to {percent}")
            last_percent = float(percent)
        if not all(isinstance(line, str) for line in update.logs):
            problems.append(f"{where} has non-string log lines: {update.logs!r:.120}")
    final = [u for u in updates if getattr(u, "status", None) == "completed"]
    if len(final) != 1 or final[0] is not updates[-1]:
        problems.append(
            f"expected exactly one 'completed' update, last; statuses were "
            f"{[getattr(u, 'status', '?') for u in updates]}"
        )
    elif getattr(final[0], "result", None) is None or final[0].result.request_id != response.request_id:
        problems.append("the 'completed' update does not carry the response as .result")
    typed = [u for u in updates if isinstance(u, expected)]
    if capabilities.queue_position and not any(
        u.status == "queued" and u.queue_position is not None for u in typed
    ):
        problems.append(
            "Capabilities.queue_position is True but no queued update had a "
            "queue_position (does the 'ok' job spend time in the queue?)"
        )
    if capabilities.progress_percent and not any(
        u.status == "processing" and u.progress_percent is not None for u in typed
    ):
        problems.append(
            "Capabilities.progress_percent is True but no processing update had a "
            "progress_percent (does the 'ok' job spend time processing?)"
        )
    if capabilities.logs and not any(u.logs for u in typed):
        problems.append("Capabilities.logs is True but no update carried log lines")
    return problems


def exception_surfaces(exc: BaseException) -> list[tuple[str, str]]:
    """Every text a caller may see or log from an exception and its whole cause/context chain."""
    surfaces: list[tuple[str, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    depth = 0
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        label = f"{type(current).__name__} (exception chain depth {depth})"
        surfaces.append((f"str() of {label}", str(current)))
        surfaces.append((f"repr() of {label}", repr(current)))
        surfaces.append((f"args of {label}", repr(current.args)))
        if isinstance(current, TarashException):
            surfaces.append((f"raw_response of {label}", to_text(current.raw_response)))
            for attempt in current.attempts:
                surfaces.append(
                    (
                        f"execution_metadata of {label}",
                        f"{attempt.error_message} {attempt.cancel_error}",
                    )
                )
        current = current.__cause__ or current.__context__
        depth += 1
    return surfaces


def response_surfaces(response: Any, updates: Iterable[Any]) -> list[tuple[str, str]]:
    surfaces = [
        ("repr() of the response", repr(response)),
        ("response.raw_response", to_text(getattr(response, "raw_response", None))),
    ]
    for index, update in enumerate(updates):
        surfaces.append((f"progress update #{index + 1}", repr(update)))
        surfaces.append((f"progress update #{index + 1} .update", to_text(update.update)))
    return surfaces


def to_text(value: Any) -> str:
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def leaks(secret: str, surfaces: Iterable[tuple[str, str]]) -> list[str]:
    """Where ``secret`` appears, with the secret masked in the excerpt."""
    found = []
    for where, text in surfaces:
        at = text.find(secret)
        if at >= 0:
            excerpt = text[max(at - 60, 0) : at + len(secret) + 60].replace(secret, "<API KEY>")
            found.append(f"{where}: ...{excerpt}...")
    return found


def json_problems(data: Any, *, secret: str, what: str) -> list[str]:
    """``data`` must be plain JSON (it is stored in job handles and the ledger) without the key."""
    try:
        text = json.dumps(data, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        return [
            f"{what} is not JSON-serialisable ({type(exc).__name__}: {exc}); it is stored in "
            "job handles and the ledger, so keep it to str, int, float, bool, None, lists and "
            "dicts with string keys"
        ]
    bad_keys = _non_string_keys(data)
    if bad_keys:
        return [
            f"{what} has non-string keys {bad_keys!r:.120}; JSON turns them into strings, so "
            "a job resumed from its handle would not find them"
        ]
    if secret in text:
        return [
            f"{what} contains the API key; it is stored in job handles and the ledger: "
            "read the key from the config in every hook instead"
        ]
    return []


def _non_string_keys(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        found = [key for key in value if not isinstance(key, str)]
        for item in value.values():
            found.extend(_non_string_keys(item))
        return found
    if isinstance(value, (list, tuple)):
        return [key for item in value for key in _non_string_keys(item)]
    return []
