"""Saving a response's outputs to disk before their URLs expire, with a checksum in the ledger.

What ``VideoGenerationResponse.download`` and ``ImageGenerationResponse.download`` (and their
async twins, and ``tarash jobs download``) run. Each output (a URL, a data URI or
:class:`~tarash.tarash_gateway.models.MediaContent`) is streamed through :mod:`._download`
(size-capped, written to a temporary file renamed into place), then its SHA-256 and size are
recorded in the job's ledger history as a ``download`` event (when the job is in the ledger).

Providers delete outputs: a response past its ``expires_at`` is refused before any request, and an
output URL answering 403, 404 or 410 is reported as expired; both raise
:class:`~tarash.tarash_gateway.exceptions.OutputExpiredError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from . import _download
from ._ledger import active_ledger
from ._redact import get_logger
from .exceptions import HTTPError, OutputExpiredError, ValidationError
from .models import ImageGenerationResponse, MediaContent, MediaType, VideoGenerationResponse

__all__ = [
    "EXPIRED_STATUSES",
    "SavedOutput",
    "download_outputs",
    "download_outputs_async",
    "outputs_of",
    "saved_as_json",
]

log = get_logger("tarash.outputs")

#: Answers that mean the provider deleted the output.
EXPIRED_STATUSES = frozenset({403, 404, 410})
_HASH_CHUNK = 1024 * 1024

AnyResponse = VideoGenerationResponse | ImageGenerationResponse


@attrs.frozen(kw_only=True)
class SavedOutput:
    """One output written to disk.

    Attributes:
        path: the file written.
        sha256: hex SHA-256 of its bytes.
        size: its size in bytes.
        source: where it came from: the URL, ``data:<type>`` for a data URI, or ``bytes`` for
            ``MediaContent``.
    """

    path: Path
    sha256: str
    size: int
    source: str


def outputs_of(response: AnyResponse) -> list[MediaType]:
    """The response's outputs in order: its video, or its images."""
    if isinstance(response, VideoGenerationResponse):
        return [response.video]
    return list(response.images)


def _source(item: MediaType) -> str:
    if isinstance(item, MediaContent):
        return "bytes"
    if item.startswith("data:"):
        return item.split(";", 1)[0].split(",", 1)[0]
    return item


def _check_not_expired(response: AnyResponse, now: datetime | None) -> None:
    expires = response.expires_at
    if expires is None:
        return
    moment = now or datetime.now(timezone.utc)
    if moment >= expires and any(isinstance(i, str) and _is_remote(i) for i in outputs_of(response)):
        raise OutputExpiredError(
            f"the outputs of job {response.request_id} expired at {expires.isoformat()}: "
            "the provider has deleted them; generate again (and download before they expire)",
            url=_source(outputs_of(response)[0]),
            expires_at=expires,
            provider=response.provider,
            model=response.model,
            request_id=response.request_id,
        )


def _is_remote(item: str) -> bool:
    return item.split(":", 1)[0].lower() in ("http", "https")


def _targets(dest: Path, count: int) -> Path:
    if count > 1 and not dest.is_dir():
        raise ValidationError(
            f"{count} outputs need a directory to be saved in, not {dest}",
            field="dest",
            value=str(dest),
            phase="download",
        )
    return dest


def _expired(exc: HTTPError, item: str, response: AnyResponse) -> OutputExpiredError:
    when = f" (they expire at {response.expires_at.isoformat()})" if response.expires_at else ""
    return OutputExpiredError(
        f"output {item} of job {response.request_id} answered HTTP {exc.status_code}: the provider "
        f"deleted it{when}; generate again (and download before outputs expire)",
        url=item,
        expires_at=response.expires_at,
        status_code=exc.status_code,
        provider=response.provider,
        model=response.model,
        request_id=response.request_id,
    )


def _saved(path: Path, item: MediaType) -> SavedOutput:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return SavedOutput(path=path, sha256=digest.hexdigest(), size=size, source=_source(item))


def _record(response: AnyResponse, saved: Sequence[SavedOutput]) -> None:
    """A ``download`` event per file in the job's ledger history (when the job is there)."""
    ledger = active_ledger()
    if ledger is None:
        return
    record = ledger.store.get(response.request_id)
    if record is None or (response.provider and record.provider != response.provider):
        log.debug("Job %s is not in the ledger: its download is not recorded", response.request_id)
        return
    for item in saved:
        detail = {"path": str(item.path), "sha256": item.sha256, "bytes": item.size, "source": item.source}
        ledger.event(record.key, "download", detail)


def _fetch_one(
    response: AnyResponse,
    item: MediaType,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    verify: ssl.SSLContext | bool,
) -> Path:
    if isinstance(item, MediaContent):
        return _download.save_bytes(item.content, dest, content_type=item.content_type, max_bytes=max_bytes)
    try:
        return _download.download(item, dest, max_bytes=max_bytes, timeout=timeout, verify=verify)
    except HTTPError as exc:
        if exc.status_code in EXPIRED_STATUSES:
            raise _expired(exc, item, response) from exc
        raise


def download_outputs(
    response: AnyResponse,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = _download.DEFAULT_MAX_BYTES,
    timeout: float = _download.DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    now: datetime | None = None,
) -> list[SavedOutput]:
    """Save every output of ``response`` under ``dest`` (a directory, or a file path for a
    single output) and record each file's checksum in the ledger; see the module docstring."""
    _check_not_expired(response, now)
    items = outputs_of(response)
    target = _targets(Path(dest), len(items))
    saved = []
    for item in items:
        path = _fetch_one(response, item, target, max_bytes=max_bytes, timeout=timeout, verify=verify)
        saved.append(_saved(path, item))
    _record(response, saved)
    return saved


async def download_outputs_async(
    response: AnyResponse,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = _download.DEFAULT_MAX_BYTES,
    timeout: float = _download.DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    now: datetime | None = None,
) -> list[SavedOutput]:
    """Async :func:`download_outputs` (URLs streamed on the event loop, files hashed in a thread)."""
    _check_not_expired(response, now)
    items = outputs_of(response)
    target = _targets(Path(dest), len(items))
    saved = []
    for item in items:
        if isinstance(item, MediaContent) or not _is_remote(item):
            path = await asyncio.to_thread(
                _fetch_one, response, item, target, max_bytes=max_bytes, timeout=timeout, verify=verify
            )
        else:
            try:
                path = await _download.download_async(
                    item, target, max_bytes=max_bytes, timeout=timeout, verify=verify
                )
            except HTTPError as exc:
                if exc.status_code in EXPIRED_STATUSES:
                    raise _expired(exc, item, response) from exc
                raise
        saved.append(await asyncio.to_thread(_saved, path, item))
    await asyncio.to_thread(_record, response, saved)
    return saved


def saved_as_json(saved: Sequence[SavedOutput]) -> list[dict[str, Any]]:
    """Plain JSON for the command line."""
    return [{"path": str(s.path), "sha256": s.sha256, "bytes": s.size, "source": s.source} for s in saved]
