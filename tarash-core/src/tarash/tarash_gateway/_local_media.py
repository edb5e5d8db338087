"""Local inputs: a ``pathlib.Path``, ``bytes`` or an open binary file given where a request takes
media (``ImageType.image``, ``VideoGenerationRequest.video``, ``ImageGenerationRequest.mask_image``).

When: a local input is read **when the request object is built**, into ``MediaContent``
(bytes and their MIME type). So a missing, unreadable, empty or oversized file, or bytes whose type
cannot be told, raises :class:`~tarash.tarash_gateway.exceptions.ValidationError` naming the field
from the constructor: before the ledger records anything and before any request is sent, and the
request holds the bytes it will send (a file changed afterwards changes nothing).

The type comes from the content's signature (PNG, JPEG, GIF, WebP, MP4/MOV, WebM, WAV, MP3), else
from the file name; pass ``MediaContent(content=..., content_type=...)`` to say it yourself. At
most :data:`MAX_LOCAL_INPUT_BYTES` are read; give a URL for anything larger. How the bytes travel
is the provider's choice (an upload, a data URI, a multipart part): see each provider's page.
"""

from __future__ import annotations

import os
import stat
from typing import Any, BinaryIO, Union

from .exceptions import ValidationError

__all__ = ["MAX_LOCAL_INPUT_BYTES", "LocalMedia", "read_local", "sniff_content_type"]

#: The most bytes a local input may have (100 MiB: fal's single-request upload limit).
MAX_LOCAL_INPUT_BYTES = 100 * 1024 * 1024

#: What a request accepts as a local input.
LocalMedia = Union["os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"ID3", "audio/mpeg"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
)


def sniff_content_type(data: bytes) -> str | None:
    """The MIME type the bytes' signature shows, or None."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if data[8:12] == b"WEBP" else "audio/wav"
    for offset, magic, content_type in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return content_type
    return None


def _refuse(field: str, message: str, value: Any) -> ValidationError:
    return ValidationError(f"{field}: {message}", field=field, value=value)


def _guess_from_name(name: str | None) -> str | None:
    if not name:
        return None
    import mimetypes  # lazy: about 5 ms that the models would pay at import for a rare fallback

    return mimetypes.guess_type(name)[0]


def _media(data: bytes, name: str | None, field: str, shown: Any) -> tuple[bytes, str]:
    if not data:
        raise _refuse(field, "the local input is empty", shown)
    if len(data) > MAX_LOCAL_INPUT_BYTES:
        raise _refuse(
            field,
            f"the local input has more than {MAX_LOCAL_INPUT_BYTES} bytes; upload it yourself and "
            "give its URL",
            shown,
        )
    content_type = sniff_content_type(data) or _guess_from_name(name)
    if content_type is None:
        raise _refuse(
            field,
            "cannot tell the media type of the local input; pass MediaContent(content=..., content_type=...)",
            shown,
        )
    return data, content_type


def _read_path(path: str, field: str) -> bytes:
    try:
        found = os.stat(path)
        if not stat.S_ISREG(found.st_mode):
            raise _refuse(field, f"{path!r} is not a file", path)
        if found.st_size > MAX_LOCAL_INPUT_BYTES:
            raise _refuse(
                field,
                f"{path!r} has {found.st_size} bytes, more than {MAX_LOCAL_INPUT_BYTES}; upload it "
                "yourself and give its URL",
                path,
            )
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise _refuse(field, f"no such file {path!r}", path) from None
    except OSError as exc:
        raise _refuse(field, f"cannot read {path!r}: {exc.strerror or exc}", path) from None


def _read_stream(stream: Any, field: str) -> bytes:
    try:
        data = stream.read(MAX_LOCAL_INPUT_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise _refuse(field, f"cannot read the file object: {exc}", type(stream).__name__) from None
    if not isinstance(data, (bytes, bytearray)):
        raise _refuse(field, "the file object is not binary: open it with 'rb'", type(stream).__name__)
    return bytes(data)


def read_local(value: Any, field: str) -> tuple[bytes, str] | None:
    """``(content, content_type)`` when ``value`` is a local input, else None.

    :raises ValidationError: naming ``field``: a missing, unreadable, empty or too large file, a
        text-mode file object, or bytes of an unknown type.
    """
    if isinstance(value, os.PathLike):
        path = os.path.expanduser(os.fsdecode(os.fspath(value)))
        return _media(_read_path(path, field), os.path.basename(path), field, path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _media(bytes(value), None, field, f"<{len(value)} bytes>")
    if not isinstance(value, str) and callable(getattr(value, "read", None)):
        name = getattr(value, "name", None)
        data = _read_stream(value, field)
        shown = name if isinstance(name, str) else type(value).__name__
        return _media(data, name if isinstance(name, str) else None, field, shown)
    return None
