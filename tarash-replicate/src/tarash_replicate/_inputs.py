"""Local media (``MediaContent``) as Replicate inputs: inline data URIs for small files, the files
API for larger ones.

Replicate's HTTP API reference: "Use a data URL when you have a small file <= 256kb", an HTTP URL
above that. The files API (``POST /v1/files``, multipart field ``content``) takes up to 100 MB and
answers with the file's ``urls.get``, which predictions accept as an input URL.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tarash.tarash_gateway.exceptions import GenerationFailedError, ValidationError
from tarash.tarash_gateway.models import ImageType, MediaContent
from tarash.tarash_gateway.plugin import Flow, Request

from ._spec import DATA_URI_LIMIT, PROVIDER, UPLOAD_LIMIT

__all__ = ["LocalMedia", "local_media", "placeholder", "substitute", "upload"]


@attrs.frozen
class LocalMedia:
    """A ``MediaContent`` found in a request, and where it is (for error messages)."""

    media: MediaContent
    field: str

    @property
    def inline(self) -> bool:
        return len(self.media.content) <= DATA_URI_LIMIT


def _walk(value: Any, field: str, found: list[LocalMedia]) -> None:
    if isinstance(value, MediaContent):
        if all(item.media is not value for item in found):
            found.append(LocalMedia(value, field))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, f"{field}.{key}", found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, f"{field}[{index}]", found)


def local_media(request: Any) -> list[LocalMedia]:
    """Every distinct ``MediaContent`` in the request; refuses one above the files API's limit."""
    found: list[LocalMedia] = []
    for index, image in enumerate(request.image_list):
        _walk(image.image, f"image_list[{index}]", found)
    for field in ("video", "mask_image", "extra_params"):
        _walk(getattr(request, field, None), field, found)
    for item in found:
        if len(item.media.content) > UPLOAD_LIMIT:
            raise ValidationError(
                f"{item.field}: {len(item.media.content)} bytes is more than Replicate's files API "
                f"takes ({UPLOAD_LIMIT} bytes); pass a URL instead",
                field=item.field,
                value=len(item.media.content),
                provider=PROVIDER,
            )
    return found


def _swap(value: Any, url_of: Callable[[MediaContent], str]) -> Any:
    if isinstance(value, MediaContent):
        return url_of(value)
    if isinstance(value, Mapping):
        return {key: _swap(item, url_of) for key, item in value.items()}
    if isinstance(value, list):
        return [_swap(item, url_of) for item in value]
    if isinstance(value, tuple):
        return tuple(_swap(item, url_of) for item in value)
    return value


def substitute(request: Any, urls: list[tuple[MediaContent, str]]) -> Any:
    """``request`` with each local media replaced by its URL."""
    if not urls:
        return request

    def url_of(media: MediaContent) -> str:
        return next(url for item, url in urls if item is media)

    changes: dict[str, Any] = {
        "image_list": [ImageType(image=_swap(i.image, url_of), type=i.type) for i in request.image_list],
        "extra_params": _swap(dict(request.extra_params), url_of),
    }
    for field in ("video", "mask_image"):
        if hasattr(request, field):
            changes[field] = _swap(getattr(request, field), url_of)
    return attrs.evolve(request, **changes)


def placeholder(index: int) -> str:
    """The URL standing for an upload not made yet, while the input is validated."""
    return f"https://api.replicate.com/v1/files/pending-{index}"


def upload(item: LocalMedia) -> Flow[str]:
    """Upload one file through the files API; returns the URL predictions accept."""
    extension = mimetypes.guess_extension(item.media.content_type) or ""
    answer = yield Request(
        method="POST",
        url="/v1/files",
        files={"content": (f"input{extension}", item.media.content, item.media.content_type)},
    )
    try:
        url = answer.json()["urls"]["get"]
    except (ValueError, KeyError, TypeError):
        url = None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise GenerationFailedError(
            f"Replicate's files API answered without a file URL for {item.field}",
            raw_response=answer.text[:2000],
            provider=PROVIDER,
            phase="submit",
            retryable=False,
        )
    return url
