"""Small helpers for provider authors and users.

Plugin authors: ``data_dir`` is where Tarash keeps its files (``TARASH_HOME``, else the platform's
data directory), ``get_logger`` gives a logger whose records are redacted, ``register_secret``
makes a credential read from somewhere other than ``config.api_key`` (an env var, a file) scrubbed
everywhere, ``parse_retry_after`` reads a ``Retry-After`` header for ``HTTPError.retry_after``.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from ._errors import parse_retry_after
from ._ledger import data_dir
from ._redact import get_logger, redact, redact_text, register_secret
from .exceptions import ValidationError
from .models import MediaContent

__all__ = [
    "convert_to_data_url",
    "data_dir",
    "generate_unique_id",
    "get_logger",
    "parse_data_uri",
    "parse_retry_after",
    "redact",
    "redact_text",
    "register_secret",
]

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,")


def generate_unique_id() -> str:
    """A random, URL-safe unique id (32 hex characters)."""
    return uuid.uuid4().hex


def convert_to_data_url(media: MediaContent) -> str:
    """``data:<content_type>;base64,<content>`` for raw media."""
    return media.to_data_uri()


def parse_data_uri(uri: str) -> MediaContent:
    """Decode a ``data:`` URI into MediaContent (ValidationError if malformed)."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ValidationError("not a data: URI", field="media", value=uri[:40])
    payload = uri[match.end() :]
    if match.group("b64"):
        try:
            content = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("data: URI has invalid base64", field="media", value=uri[:40]) from None
    else:
        from urllib.parse import unquote_to_bytes

        content = unquote_to_bytes(payload)
    return MediaContent(content=content, content_type=match.group("type") or "text/plain")
