"""Safe file names for downloaded media: a provider-supplied name never leaves the directory it
is joined to, and the extension matches the content type."""

from __future__ import annotations

import os
import re
import unicodedata
import uuid

__all__ = ["MAX_NAME_BYTES", "extension_for", "safe_filename"]

MAX_NAME_BYTES = 200
MAX_EXTENSION_LENGTH = 16

_EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "application/octet-stream": "",
    "binary/octet-stream": "",
}
_FORBIDDEN_CHARS = re.compile(r'[<>:"|?*]')
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)


def extension_for(content_type: str | None) -> str:
    """A file extension (with the dot) for a MIME type, or ``""`` when none is known."""
    if not content_type:
        return ""
    base = content_type.split(";", 1)[0].strip().lower()
    known = _EXTENSIONS.get(base)
    if known is not None:
        return known
    import mimetypes

    return mimetypes.guess_extension(base) or ""


def safe_filename(name: str | None, *, content_type: str | None = None) -> str:
    """A file name that stays inside the directory it is joined to.

    Keeps only the last path component (``/`` and ``\\`` both separate), drops control and
    formatting characters (bidirectional overrides included) and characters Windows forbids,
    collapses ``..``, strips leading dots (no hidden files) and trailing dots and spaces, avoids
    Windows device names and caps the length. Falls back to a generated ``tarash-<hex>`` name.
    The extension for ``content_type`` is appended unless the name already has a matching one
    (``clip.mp4`` stays, ``clip`` and ``clip.exe`` served as ``video/mp4`` get ``.mp4``).
    """
    cleaned = _clean_component(name) if name else ""
    if not cleaned:
        cleaned = f"tarash-{uuid.uuid4().hex[:12]}"
    stem, extension = os.path.splitext(cleaned)
    wanted = extension_for(content_type)
    if (
        not extension
        or len(extension) > MAX_EXTENSION_LENGTH
        or (wanted and not _same_type(extension, wanted))
    ):
        stem, extension = cleaned, wanted
    if stem.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    budget = MAX_NAME_BYTES - len(extension.encode())
    return stem.encode()[:budget].decode(errors="ignore") + extension


def _same_type(extension: str, wanted: str) -> bool:
    import mimetypes

    if extension.lower() == wanted:
        return True
    guessed = mimetypes.guess_type(f"x{extension}")[0]
    return guessed is not None and guessed == mimetypes.guess_type(f"x{wanted}")[0]


def _clean_component(name: str) -> str:
    last = next((part for part in reversed(re.split(r"[/\\]", name)) if part), "")
    visible = "".join(ch for ch in last if unicodedata.category(ch) not in _INVISIBLE)
    collapsed = re.sub(r"\.{2,}", ".", _FORBIDDEN_CHARS.sub("_", visible))
    return collapsed.strip().lstrip(".").rstrip(". ")
