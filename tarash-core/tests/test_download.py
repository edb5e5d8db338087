"""Safe downloads (``tarash.tarash_gateway._download``) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tarash.tarash_gateway._download import (
    MAX_REDIRECTS,
    default_file_roots,
    download,
    download_async,
    safe_filename,
    save_bytes,
)
from tarash.tarash_gateway.exceptions import (
    HTTPConnectionError,
    HTTPError,
    TarashException,
    ValidationError,
)
from tarash.tarash_gateway.mock import MEDIA_DIR

CLIP = bytes(range(256)) * 64  # 16 KiB
CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    """Routes of the test server; ``server.hits`` counts requests per path."""

    server: MediaServer

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        route = self.path.split("?", 1)[0]
        try:
            self._route(route)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, route: str) -> None:
        if route == "/clip.mp4":
            self._send(200, CLIP, {"Content-Type": "video/mp4"})
        elif route == "/redirect":
            self._send(302, headers={"Location": "/clip.mp4"})
        elif route.startswith("/loop"):
            self._send(302, headers={"Location": f"/loop{len(route)}"})
        elif route == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            for _ in range(8):
                self.wfile.write(CHUNK)
                self.wfile.flush()
        elif route == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            for _ in range(400):
                self.wfile.write(CHUNK)
                self.wfile.flush()
                time.sleep(0.025)
        elif route == "/declared-huge":
            self._send(200, b"tiny", {"Content-Type": "video/mp4", "Content-Length": str(10**9)})
        elif route == "/disposition":
            self._send(
                200,
                CLIP,
                {
                    "Content-Type": "video/mp4",
                    "Content-Disposition": 'attachment; filename="../../etc/passwd"',
                },
            )
        elif route == "/slashes":
            self._send(
                200,
                CLIP,
                {"Content-Type": "video/mp4", "Content-Disposition": 'attachment; filename="a/b\\\\c.mp4"'},
            )
        elif route.startswith("/files/"):
            self._send(200, CLIP, {"Content-Type": "image/png"})
        else:
            self._send(404, b"not found", {"Content-Type": "text/plain"})


class MediaServer(ThreadingHTTPServer):
    """An HTTP/1.0 server in a daemon thread (connections close after each response)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up early is expected here."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[MediaServer]:
    srv = MediaServer()
    srv.thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    srv.thread.join()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------------------------
# http(s)
# ----------------------------------------------------------------------------------------------


def test_download_to_an_explicit_file(server: MediaServer, out_dir: Path) -> None:
    path = download(server.url("/clip.mp4"), out_dir / "video.mp4")
    assert path == out_dir / "video.mp4"
    assert path.read_bytes() == CLIP
    assert listing(out_dir) == ["video.mp4"]


def test_explicit_file_is_overwritten(server: MediaServer, out_dir: Path) -> None:
    (out_dir / "video.mp4").write_bytes(b"old")
    download(server.url("/clip.mp4"), out_dir / "video.mp4")
    assert (out_dir / "video.mp4").read_bytes() == CLIP


def test_directory_destination_names_the_file_and_never_overwrites(
    server: MediaServer,
    out_dir: Path,
) -> None:
    first = download(server.url("/clip.mp4"), out_dir, filename="req_42")
    second = download(server.url("/clip.mp4"), out_dir, filename="req_42")
    third = download(server.url("/clip.mp4"), out_dir)
    assert (first.name, second.name, third.name) == ("req_42.mp4", "req_42-1.mp4", "clip.mp4")
    assert listing(out_dir) == ["clip.mp4", "req_42-1.mp4", "req_42.mp4"]


def test_redirect_is_followed(server: MediaServer, out_dir: Path) -> None:
    path = download(server.url("/redirect"), out_dir)
    assert path == out_dir / "clip.mp4"
    assert path.read_bytes() == CLIP
    assert server.hits == {"/redirect": 1, "/clip.mp4": 1}


def test_redirect_loop_stops_after_the_limit(server: MediaServer, out_dir: Path) -> None:
    with pytest.raises(HTTPError) as raised:
        download(server.url("/loop"), out_dir)
    assert raised.value.message == (
        f"download failed: more than {MAX_REDIRECTS} redirects for {server.url('/loop')}"
    )
    assert sum(server.hits.values()) == MAX_REDIRECTS + 1
    assert listing(out_dir) == []


def test_404_is_an_http_error_with_the_status(server: MediaServer, out_dir: Path) -> None:
    with pytest.raises(HTTPError) as raised:
        download(server.url("/missing.mp4"), out_dir / "x.mp4")
    assert raised.value.status_code == 404
    assert raised.value.phase == "download"
    assert raised.value.message == f"download failed: HTTP 404 for {server.url('/missing.mp4')}"
    assert listing(out_dir) == []


def test_query_secrets_are_redacted_from_errors(server: MediaServer, out_dir: Path) -> None:
    with pytest.raises(HTTPError) as raised:
        download(server.url("/missing.mp4?token=s3cr3t-value&x=1"), out_dir)
    assert "s3cr3t-value" not in str(raised.value)
    assert "token=***REDACTED***&x=1" in str(raised.value)


def test_size_cap_exceeded_mid_stream_leaves_no_file(server: MediaServer, out_dir: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        download(server.url("/stream"), out_dir / "big.mp4", max_bytes=3 * len(CHUNK) + 10)
    assert raised.value.field == "max_bytes"
    assert raised.value.message.startswith("download refused: ")
    assert raised.value.message.endswith(f"bytes exceed the limit of {3 * len(CHUNK) + 10} bytes")
    assert listing(out_dir) == []


def test_stream_under_the_cap_is_complete(server: MediaServer, out_dir: Path) -> None:
    path = download(server.url("/stream"), out_dir / "big.mp4", max_bytes=8 * len(CHUNK))
    assert path.read_bytes() == CHUNK * 8


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    server: MediaServer,
    out_dir: Path,
) -> None:
    with pytest.raises(ValidationError) as raised:
        download(server.url("/declared-huge"), out_dir, max_bytes=10**6)
    assert raised.value.value == 10**9
    assert raised.value.message == (f"download refused: {10**9} bytes exceed the limit of {10**6} bytes")
    assert listing(out_dir) == []


def test_content_disposition_traversal_stays_in_the_directory(
    server: MediaServer,
    out_dir: Path,
) -> None:
    path = download(server.url("/disposition"), out_dir)
    assert path == out_dir / "passwd.mp4"
    assert listing(out_dir) == ["passwd.mp4"]
    assert listing(out_dir.parent) == ["out"]


def test_names_with_separators_keep_only_the_last_component(
    server: MediaServer,
    out_dir: Path,
) -> None:
    assert download(server.url("/slashes"), out_dir) == out_dir / "c.mp4"
    encoded = download(server.url("/files/..%2F..%2Fescaped.png"), out_dir)
    assert encoded == out_dir / "escaped.png"
    assert listing(out_dir) == ["c.mp4", "escaped.png"]
    assert listing(out_dir.parent) == ["out"]


def test_filename_argument_is_sanitised_too(server: MediaServer, out_dir: Path) -> None:
    path = download(server.url("/clip.mp4"), out_dir, filename="../../../tmp/evil")
    assert path == out_dir / "evil.mp4"


def test_connection_refused_is_a_connection_error(out_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HTTPConnectionError) as raised:
        download(f"http://127.0.0.1:{port}/clip.mp4", out_dir)
    assert raised.value.request_sent is False
    assert listing(out_dir) == []


def test_missing_destination_directory_is_a_validation_error(
    server: MediaServer,
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError) as raised:
        download(server.url("/clip.mp4"), tmp_path / "nope" / "x.mp4")
    assert raised.value.field == "dest"
    assert raised.value.message == (
        f"cannot write {tmp_path / 'nope' / 'x.mp4'}: directory {tmp_path / 'nope'} does not exist"
    )
    assert server.hits == {}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_special_file_destination_is_refused(server: MediaServer, out_dir: Path) -> None:
    fifo = out_dir / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError) as raised:
        download(server.url("/clip.mp4"), fifo)
    assert raised.value.message == f"refusing to overwrite {fifo}: not a regular file"
    assert listing(out_dir) == ["pipe"]


async def test_async_download_and_404(server: MediaServer, out_dir: Path) -> None:
    path = await download_async(server.url("/redirect"), out_dir / "a.mp4")
    assert path.read_bytes() == CLIP
    with pytest.raises(HTTPError) as raised:
        await download_async(server.url("/missing"), out_dir / "b.mp4")
    assert raised.value.status_code == 404
    with pytest.raises(ValidationError):
        await download_async(server.url("/stream"), out_dir / "c.mp4", max_bytes=100)
    assert listing(out_dir) == ["a.mp4"]


async def test_async_file_and_data_sources(out_dir: Path) -> None:
    clip = MEDIA_DIR / "1x1_240p_4s.mp4"
    copied = await download_async(clip.as_uri(), out_dir)
    assert copied == out_dir / "1x1_240p_4s.mp4"
    assert copied.read_bytes() == clip.read_bytes()
    data = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    assert (await download_async(data, out_dir / "hello.txt")).read_text() == "hello"


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_interrupt_mid_stream_leaves_no_file(
    server: MediaServer, out_dir: Path, sigint_raises: None, reaped: list[subprocess.Popen[str]]
) -> None:
    script = textwrap.dedent(f"""
        import sys
        from tarash.tarash_gateway._download import download
        try:
            download({server.url("/slow")!r}, {str(out_dir / "slow.mp4")!r})
        except KeyboardInterrupt:
            print("interrupted")
            sys.exit(130)
        print("finished")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    reaped.append(child)
    deadline = time.monotonic() + 20
    while not any(p.suffix == ".part" for p in out_dir.iterdir()):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=20)
    assert (child.returncode, out) == (130, "interrupted\n")
    assert listing(out_dir) == []


# ----------------------------------------------------------------------------------------------
# Refused schemes, file:// and data:
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://127.0.0.1/clip.mp4", "ftp:"),
        ("javascript:alert(1)", "javascript:"),
        ("gopher://x/1", "gopher:"),
        ("/etc/passwd", "a URL without a scheme"),
    ],
)
def test_other_schemes_are_refused(url: str, shown: str, out_dir: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        download(url, out_dir)
    assert raised.value.field == "url"
    assert raised.value.message == (
        f"download refused: {shown} is not allowed (only http(s), data: and file:// URLs produced by Tarash)"
    )
    assert listing(out_dir) == []


def test_mock_media_file_urls_are_copied(out_dir: Path) -> None:
    clip = MEDIA_DIR / "16x9_180p_4s.mp4"
    path = download(clip.resolve().as_uri(), out_dir, filename="mock_1")
    assert path == out_dir / "mock_1.mp4"
    assert path.read_bytes() == clip.read_bytes()
    assert path.read_bytes()[4:8] == b"ftyp"


def test_file_urls_outside_the_allowed_roots_are_refused(tmp_path: Path, out_dir: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy")
    with pytest.raises(ValidationError) as raised:
        download(secret.as_uri(), out_dir)
    assert raised.value.message == (
        f"download refused: {secret.as_uri()} is outside the directories Tarash writes to "
        "(pass allowed_file_roots to allow it)"
    )
    assert listing(out_dir) == []
    assert download(secret.as_uri(), out_dir, allowed_file_roots=[tmp_path]).read_text() == ("do not copy")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_inside_an_allowed_root_cannot_point_outside(
    tmp_path: Path,
    out_dir: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(ValidationError):
        download((root / "link.txt").as_uri(), out_dir, allowed_file_roots=[root])
    traversal = f"{root.as_uri()}/../outside.txt"
    with pytest.raises(ValidationError):
        download(traversal, out_dir, allowed_file_roots=[root])
    assert listing(out_dir) == []


def test_file_url_on_another_host_is_refused(out_dir: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        download("file://evil.example/etc/passwd", out_dir)
    assert raised.value.message == "download refused: file URL on host 'evil.example'"


def test_default_roots_are_the_mock_directories() -> None:
    import tempfile

    assert default_file_roots() == [MEDIA_DIR, Path(tempfile.gettempdir()) / "tarash-mock"]


def test_data_uri_is_decoded(out_dir: Path) -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    path = download(uri, out_dir, filename="img")
    assert path == out_dir / "img.png"
    assert path.read_bytes() == png
    plain = download("data:text/plain,a%20b", out_dir / "t.txt")
    assert plain.read_bytes() == b"a b"


def test_data_uri_over_the_cap_is_refused(out_dir: Path) -> None:
    uri = "data:video/mp4;base64," + base64.b64encode(b"z" * 3000).decode()
    with pytest.raises(ValidationError) as raised:
        download(uri, out_dir, max_bytes=1000)
    assert raised.value.message == "download refused: 3000 bytes exceed the limit of 1000 bytes"
    assert listing(out_dir) == []


def test_malformed_data_uri_is_a_validation_error(out_dir: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        download("data:image/png;base64,@@@", out_dir)
    assert raised.value.message == "download failed: data: URI has invalid base64"


def test_save_bytes_is_atomic_and_capped(out_dir: Path) -> None:
    saved = save_bytes(b"abc", out_dir, content_type="video/mp4", filename="r1")
    assert saved == out_dir / "r1.mp4"
    assert saved.read_bytes() == b"abc"
    with pytest.raises(ValidationError):
        save_bytes(b"abcdef", out_dir / "x.bin", max_bytes=5)
    assert listing(out_dir) == ["r1.mp4"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_write_failures_are_tarash_exceptions() -> None:
    """/proc/self is a directory that no one, root included, can create files in."""
    with pytest.raises(TarashException) as raised:
        save_bytes(b"abc", Path("/proc/self"), filename="x")
    assert type(raised.value) is TarashException
    assert raised.value.message.startswith("cannot write /proc/self/.tarash-")
    assert raised.value.phase == "download"


# ----------------------------------------------------------------------------------------------
# safe_filename
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("clip.mp4", "video/mp4", "clip.mp4"),
        ("clip", "video/mp4", "clip.mp4"),
        ("clip.exe", "video/mp4", "clip.exe.mp4"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("req.abc-123", "video/mp4", "req.abc-123.mp4"),
        ("../../etc/passwd", None, "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", None, "cmd.exe"),
        ("a/b/", "image/png", "b.png"),
        (".bashrc", None, "bashrc"),
        ("con.txt", None, "_con.txt"),
        ("evil\u202egnp.exe", None, "evilgnp.exe"),
        ("a\x00b\nc\x1b[2J.mp4", "video/mp4", "abc[2J.mp4"),
        ("a..b..mp4", None, "a.b.mp4"),
        ('x:y*z?"<>|.png', None, "x_y_z_____.png"),
        ("clip.mp4", "application/octet-stream", "clip.mp4"),
        ("name. ", None, "name"),
    ],
)
def test_safe_filename(name: str, content_type: str | None, expected: str) -> None:
    assert safe_filename(name, content_type=content_type) == expected


@pytest.mark.parametrize("name", [None, "", "..", "/", "...", "\x00\x01", " . "])
def test_safe_filename_falls_back_to_a_generated_name(name: str | None) -> None:
    generated = safe_filename(name, content_type="video/mp4")
    assert generated.startswith("tarash-")
    assert generated.endswith(".mp4")
    assert len(generated) == len("tarash-") + 12 + len(".mp4")


def test_safe_filename_caps_the_length_and_keeps_the_extension() -> None:
    name = safe_filename("é" * 300 + ".mp4", content_type="video/mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= 200
    assert set(name[:-4]) == {"é"}
