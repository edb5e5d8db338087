"""Safe downloads of generated media to local files.

Accepted sources:

* ``http://`` and ``https://`` URLs, streamed with httpx (redirects followed, at most
  :data:`MAX_REDIRECTS`);
* ``data:`` URIs, decoded;
* ``file://`` URLs that Tarash itself produced: files under the mock provider's bundled media
  directory or its temporary directory (``<tempdir>/tarash-mock``), plus any roots the caller
  allows explicitly.

Anything else (other schemes, ``file://`` URLs elsewhere) is refused with
:class:`~tarash.tarash_gateway.exceptions.ValidationError`. Every source is size-capped
(``max_bytes``; a declared ``Content-Length`` is checked before anything is written) and written
to a temporary file in the destination directory that is renamed into place only when complete, so
an error, an exceeded cap or an interrupt never leaves a partial file behind.

When the destination is an existing directory, the file name comes from ``filename``, else from
the server (``Content-Disposition``, else the last URL path segment), and is sanitised by
:func:`safe_filename` so that a provider-supplied name can never leave that directory; an existing
file there is never overwritten (``name-1.ext``, ``name-2.ext``… are used instead). An explicit
file path is overwritten.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import uuid
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

from ._errors import from_httpx
from ._filenames import extension_for, safe_filename
from .exceptions import HTTPError, TarashException, ValidationError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "default_file_roots",
    "download",
    "download_async",
    "extension_for",
    "safe_filename",
    "save_bytes",
]

#: Default size cap of one download: 2 GiB.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Redirects followed before giving up.
MAX_REDIRECTS = 5
#: Seconds httpx waits for a connection or for the next chunk.
DEFAULT_TIMEOUT = 60.0
CHUNK_SIZE = 256 * 1024


def default_file_roots() -> list[Path]:
    """The directories whose ``file://`` URLs Tarash produces (the mock provider's media)."""
    # lazy: needed only for a mock file:// URL or a data: URL
    from .mock import MEDIA_DIR

    return [MEDIA_DIR, Path(tempfile.gettempdir()) / "tarash-mock"]


# ----------------------------------------------------------------------------------------------
# Destination handling
# ----------------------------------------------------------------------------------------------


class _Target:
    """Where a download ends up: an explicit file, or a safe, unused name in a directory.

    Checked when built, before anything is fetched; :meth:`name` supplies the name a directory
    destination needs once the source is known.
    """

    def __init__(self, dest: Path) -> None:
        self._exact: Path | None = None
        self._name = ""
        if dest.is_dir():
            self.directory = dest
            return
        if dest.exists() and not dest.is_file():
            raise ValidationError(
                f"refusing to overwrite {dest}: not a regular file",
                field="dest",
                value=str(dest),
                phase="download",
            )
        if not dest.parent.is_dir():
            raise ValidationError(
                f"cannot write {dest}: directory {dest.parent} does not exist",
                field="dest",
                value=str(dest),
                phase="download",
            )
        self.directory = dest.parent
        self._exact = dest

    def name(self, name: str | None, content_type: str | None) -> _Target:
        """Name the file (when the destination is a directory) from a proposed name and type."""
        if self._exact is None:
            self._name = safe_filename(name, content_type=content_type)
        return self

    def final_path(self) -> Path:
        if self._exact is not None:
            return self._exact
        first = self.directory / self._name
        stem, suffix = first.stem, first.suffix
        candidate, counter = first, 0
        while candidate.exists() or candidate.is_symlink():
            counter += 1
            candidate = self.directory / f"{stem}-{counter}{suffix}"
        return candidate


def _too_large(size: int, max_bytes: int) -> ValidationError:
    return ValidationError(
        f"download refused: {size} bytes exceed the limit of {max_bytes} bytes",
        field="max_bytes",
        value=size,
        phase="download",
    )


def _write_error(path: Path, exc: OSError) -> TarashException:
    return TarashException(f"cannot write {path}: {exc.strerror or exc}", phase="download")


class _PartFile:
    """A temporary file in the target directory, renamed into place by :meth:`commit`.

    Created on entering the ``with`` block; leaving it without committing (an error, an exceeded
    cap, an interrupt) removes it. An interrupt while it is being created removes it too.
    """

    def __init__(self, target: _Target, max_bytes: int) -> None:
        self.target = target
        self.max_bytes = max_bytes
        self.size = 0
        self.path = target.directory / f".tarash-{uuid.uuid4().hex}.part"
        self._committed = False

    def __enter__(self) -> _PartFile:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd: int | None = None
        file: BinaryIO | None = None
        try:
            fd = os.open(self.path, flags, 0o666)
            file = os.fdopen(fd, "wb")
        except BaseException as exc:
            if fd is not None and file is None:
                os.close(fd)
            self.path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _write_error(self.path, exc) from exc
            raise
        self._file = file
        return self

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise _too_large(self.size, self.max_bytes)
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise _write_error(self.path, exc) from exc

    def commit(self) -> Path:
        final = self.target.final_path()
        try:
            self._file.close()
            os.replace(self.path, final)
        except OSError as exc:
            raise _write_error(final, exc) from exc
        self._committed = True
        return final

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self._file.close()
            self.path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------


def _scheme(url: str) -> str:
    if not isinstance(url, str):
        raise ValidationError(
            f"download needs a URL string, got {type(url).__name__}",
            field="url",
            value=type(url).__name__,
            phase="download",
        )
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme in ("http", "https", "data", "file"):
        return scheme
    shown = f"{scheme}:" if scheme else "a URL without a scheme"
    raise ValidationError(
        f"download refused: {shown} is not allowed (only http(s), data: and file:// URLs produced by Tarash)",
        field="url",
        value=url[:80],
        phase="download",
    )


def _local_source(url: str, extra_roots: Sequence[Path] | None) -> Path:
    from urllib.request import url2pathname

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValidationError(
            f"download refused: file URL on host {parts.netloc!r}",
            field="url",
            value=url[:200],
            phase="download",
        )
    try:
        path = Path(url2pathname(parts.path)).resolve(strict=True)
    except OSError:
        raise ValidationError(
            f"download failed: {url} does not exist", field="url", value=url[:200], phase="download"
        ) from None
    roots = [*default_file_roots(), *(extra_roots or ())]
    if not any(path.is_relative_to(Path(root).resolve()) for root in roots):
        raise ValidationError(
            f"download refused: {url} is outside the directories Tarash writes to "
            "(pass allowed_file_roots to allow it)",
            field="url",
            value=url[:200],
            phase="download",
        )
    if not path.is_file():
        raise ValidationError(
            f"download refused: {url} is not a regular file", field="url", value=url[:200], phase="download"
        )
    return path


def _copy_file(
    url: str, target: _Target, filename: str | None, max_bytes: int, extra_roots: Sequence[Path] | None
) -> Path:
    import mimetypes

    source = _local_source(url, extra_roots)
    size = source.stat().st_size
    if size > max_bytes:
        raise _too_large(size, max_bytes)
    content_type = mimetypes.guess_type(source.name)[0]
    target.name(filename or source.name, content_type)
    with _PartFile(target, max_bytes) as part:
        try:
            with source.open("rb") as reader:
                while chunk := reader.read(CHUNK_SIZE):
                    part.write(chunk)
        except OSError as exc:
            raise TarashException(f"cannot read {source}: {exc.strerror or exc}", phase="download") from exc
        return part.commit()


def _data_uri(url: str, target: _Target, filename: str | None, max_bytes: int) -> Path:
    # lazy: needed only for a mock file:// URL or a data: URL
    from .utils import parse_data_uri

    header, _, payload = url.partition(",")
    estimate = len(payload) * 3 // 4 if header.endswith(";base64") else len(payload) // 3
    if estimate > max_bytes:
        raise _too_large(estimate, max_bytes)
    try:
        media = parse_data_uri(url)
    except ValidationError as exc:
        raise ValidationError(
            f"download failed: {exc.message}", field="url", value=url[:40], phase="download"
        ) from None
    return _write(media.content, target.name(filename, media.content_type), max_bytes)


def _remote_name(response: httpx.Response) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
        if name:
            return name
    segment = response.url.path.rsplit("/", 1)[-1]
    return unquote(segment) or None


def _prepare(
    response: httpx.Response, url: str, target: _Target, filename: str | None, max_bytes: int
) -> None:
    """Check the status and the declared size, and name the target from the response."""
    status = response.status_code
    if status >= 300:
        raise HTTPError(f"download failed: HTTP {status} for {url}", status_code=status, phase="download")
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    target.name(filename or _remote_name(response), response.headers.get("content-type"))


def _map_httpx(exc: httpx.HTTPError | httpx.InvalidURL, url: str) -> TarashException:
    if isinstance(exc, httpx.InvalidURL):
        return ValidationError(
            f"download refused: invalid URL ({exc})", field="url", value=url[:200], phase="download"
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return HTTPError(f"download failed: more than {MAX_REDIRECTS} redirects for {url}", phase="download")
    mapped = from_httpx(exc, phase="download")
    return mapped or HTTPError(f"download failed: {type(exc).__name__}: {exc}", phase="download")


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def save_bytes(
    content: bytes,
    dest: Path | str,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Write ``content`` to ``dest`` (a file, or a directory to name the file in) atomically."""
    target = _Target(Path(dest)).name(filename, content_type)
    return _write(content, target, max_bytes)


def _write(content: bytes, target: _Target, max_bytes: int) -> Path:
    if len(content) > max_bytes:
        raise _too_large(len(content), max_bytes)
    with _PartFile(target, max_bytes) as part:
        part.write(content)
        return part.commit()


def download(
    url: str,
    dest: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_file_roots: Sequence[Path] | None = None,
    filename: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and return the path written.

    Args:
        url: an http(s) URL, a ``data:`` URI, or a ``file://`` URL under the mock provider's
            directories or ``allowed_file_roots``.
        dest: a file path (overwritten), or an existing directory to create a file in.
        max_bytes: size cap, checked against ``Content-Length`` first and while streaming.
        allowed_file_roots: further directories whose ``file://`` URLs may be copied.
        filename: the name to use when ``dest`` is a directory (sanitised); by default the
            server's name, else a generated one.
        timeout: seconds to wait for a connection or for the next chunk.
        verify: TLS verification: an ``ssl.SSLContext`` trusting a private CA, or a bool.

    Raises:
        ValidationError: refused source, missing destination directory, or size cap exceeded.
        HTTPError: the server answered with an error status (``status_code`` set) or redirected
            too often.
        HTTPConnectionError: the server could not be reached or the connection broke.
        TarashException: the local file could not be written.
    """
    scheme = _scheme(url)
    target = _Target(Path(dest))
    if scheme == "data":
        return _data_uri(url, target, filename, max_bytes)
    if scheme == "file":
        return _copy_file(url, target, filename, max_bytes, allowed_file_roots)
    try:
        with (
            httpx.Client(
                follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout, verify=verify
            ) as client,
            client.stream("GET", url) as response,
        ):
            _prepare(response, url, target, filename, max_bytes)
            with _PartFile(target, max_bytes) as part:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    part.write(chunk)
                return part.commit()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _map_httpx(exc, url) from exc


async def download_async(
    url: str,
    dest: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_file_roots: Sequence[Path] | None = None,
    filename: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
) -> Path:
    """Async :func:`download` (file and data sources are written in a worker thread)."""
    scheme = _scheme(url)
    target = _Target(Path(dest))
    if scheme in ("data", "file"):
        return await asyncio.to_thread(
            download, url, dest, max_bytes=max_bytes, allowed_file_roots=allowed_file_roots, filename=filename
        )
    client = httpx.AsyncClient(
        follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout, verify=verify
    )
    try:
        async with client, client.stream("GET", url) as response:
            _prepare(response, url, target, filename, max_bytes)
            with _PartFile(target, max_bytes) as part:
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    part.write(chunk)
                return part.commit()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _map_httpx(exc, url) from exc
