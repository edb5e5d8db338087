"""The time left bounds a whole exchange, sync and async, and a failure after sending is a read
error in both: local servers on 127.0.0.1 (and httpx.MockTransport for the async connection
slots)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tarash.tarash_gateway._transport import DeadlineReached, Prepared, Transport, prepare
from tarash.tarash_gateway._wire import Request, Response
from tarash.tarash_gateway.exceptions import HTTPConnectionError

ANSWER = b'{"id":"j1"}'


def _read_request(conn: socket.socket) -> None:
    """Read one HTTP/1.1 request (headers, then a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed before sending a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)


def _wait_for_close(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection until the client closes it (or the test ends)."""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


class Server:
    """A server on 127.0.0.1 that reads a request on each connection, counts it, then lets
    ``answer(conn, stop)`` write whatever it likes (``tls``: over TLS)."""

    def __init__(
        self,
        answer: Callable[[socket.socket, threading.Event], None],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests = 0
        self.stop = threading.Event()
        self._answer = answer
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        accepting = threading.Thread(target=self._accept, daemon=True)
        self._threads.append(accepting)
        accepting.start()

    @property
    def base_url(self) -> str:
        port = self._listener.getsockname()[1]
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            serving = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(serving)
            serving.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            _read_request(conn)
            self.requests += 1
            self._answer(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(10)
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        answer: Callable[[socket.socket, threading.Event], None], tls: ssl.SSLContext | None = None
    ) -> Server:
        server = Server(answer, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _prepared(base_url: str, url: str = "/jobs", ca_bundle: str | None = None) -> Prepared:
    return prepare(
        Request(method="POST", url=url, json={"prompt": "a cat"}),
        provider="acme",
        base_url=base_url,
        api_key="sk-test",
        auth_header="Authorization",
        auth_scheme="Bearer",
        ca_bundle=ca_bundle,
    )


def _created() -> bytes:
    return b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n" + ANSWER


# -- sync: the deadline bounds the exchange ------------------------------------------------------


def test_sync_deadline_bounds_an_answer_whose_headers_trickle(serve: Callable[..., Server]) -> None:
    """A provider sending a header line every 0.2s (4s in all) restarted the read timeout with each
    line: the call lasted 4s. It ends at the deadline, as a request that may have been sent."""

    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 201 Created\r\n")
        for i in range(20):
            if stop.wait(0.2):
                return
            conn.sendall(b"X-Slow-%d: y\r\n" % i)
        conn.sendall(b"Content-Length: 11\r\n\r\n" + ANSWER)
        _wait_for_close(conn, stop)

    server = serve(trickle)
    transport = Transport()
    start = time.monotonic()
    with pytest.raises(DeadlineReached) as raised:
        transport.send(_prepared(server.base_url), 1.0)
    elapsed = time.monotonic() - start
    transport.close()
    assert raised.value.request_sent is True
    assert 0.9 < elapsed < 1.5
    assert server.requests == 1


def test_sync_answer_read_in_full_before_the_deadline_is_returned(serve: Callable[..., Server]) -> None:
    """The whole answer was read from the socket at once; core takes it from httpcore's buffers only
    after the deadline (a busy thread, here a trace hook that sleeps). It is the answer: it was
    thrown away as a ReadTimeout, losing the job id of a submit."""

    def at_once(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_created())
        _wait_for_close(conn, stop)

    def busy(event: str, info: dict[str, Any]) -> None:
        if event == "http11.receive_response_headers.complete":
            time.sleep(0.8)

    server = serve(at_once)
    transport = Transport()
    prepared = _prepared(server.base_url)
    prepared.request.extensions["trace"] = busy
    start = time.monotonic()
    response = transport.send(prepared, 0.5)
    elapsed = time.monotonic() - start
    transport.close()
    assert (response.status_code, response.content) == (201, ANSWER)
    assert 0.8 < elapsed < 1.3
    assert server.requests == 1


# -- async: the wait for a connection counts against the deadline --------------------------------


async def test_async_request_that_gets_no_connection_before_the_deadline_is_never_sent() -> None:
    """One connection, held by a 1.5s request: the next request, with 0.5s left, waited for the
    connection without a limit, was sent at 1.0s and given its full 0.5s again. It ends at its
    deadline, never sent (as httpx's PoolTimeout), and the connection is free afterwards."""
    paths: list[str] = []

    async def provider(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/slow":
            await asyncio.sleep(1.5)
        return httpx.Response(201, content=ANSWER)

    transport = Transport(max_connections=1, async_transport=httpx.MockTransport(provider))
    base_url = "https://api.acme.invalid"
    holder = asyncio.create_task(transport.send_async(_prepared(base_url, "/slow"), 1.0))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    with pytest.raises(HTTPConnectionError) as raised:
        await transport.send_async(_prepared(base_url, "/queued"), 0.5)
    elapsed = time.monotonic() - start
    assert type(raised.value) is HTTPConnectionError and raised.value.request_sent is False
    assert "PoolTimeout" in str(raised.value)
    assert 0.4 < elapsed < 0.9
    with pytest.raises(DeadlineReached):
        await holder
    response = await transport.send_async(_prepared(base_url, "/next"), 1.0)
    assert (response.status_code, paths) == (201, ["/slow", "/next"])


async def test_async_exchange_gets_only_the_time_left_after_waiting_for_a_connection() -> None:
    """One connection, two requests of 1s taking 0.6s each: the second got the connection at 0.6s
    and then a full 1s more, answering at 1.2s. It has the 0.4s left, and ends at its deadline."""
    read_timeouts: list[float] = []

    async def provider(request: httpx.Request) -> httpx.Response:
        read_timeouts.append(request.extensions["timeout"]["read"])
        await asyncio.sleep(0.6)
        return httpx.Response(201, content=ANSWER)

    transport = Transport(max_connections=1, async_transport=httpx.MockTransport(provider))
    base_url = "https://api.acme.invalid"
    start = time.monotonic()
    first, second = await asyncio.gather(
        transport.send_async(_prepared(base_url), 1.0),
        transport.send_async(_prepared(base_url), 1.0),
        return_exceptions=True,
    )
    elapsed = time.monotonic() - start
    assert isinstance(first, Response) and first.status_code == 201
    assert type(second) is DeadlineReached and second.request_sent is True
    assert 0.9 < elapsed < 1.5
    assert len(read_timeouts) == 2 and read_timeouts[0] > 0.9 and 0.2 < read_timeouts[1] < 0.45


# -- async: a TLS error after sending is a read error -------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def _bad_record(conn: socket.socket, stop: threading.Event) -> None:
    """After reading the request, a TLS record that cannot be decrypted (written under TLS)."""
    os.write(conn.fileno(), b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
    _wait_for_close(conn, stop)


async def test_async_tls_error_after_sending_is_a_read_error(
    serve: Callable[..., Server], authority: trustme.CA, tmp_path: Path
) -> None:
    """httpcore's async backend maps TLS errors only while connecting: a bad record in the answer
    escaped as a raw ssl.SSLError, which core took for a plugin failure (not retryable). It is a
    connection error after sending, as with the sync backend."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    ca_bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_bundle))
    server = serve(_bad_record, tls)
    transport = Transport()
    with pytest.raises(HTTPConnectionError) as raised:
        await transport.send_async(_prepared(server.base_url, ca_bundle=str(ca_bundle)), 5)
    assert type(raised.value) is HTTPConnectionError and raised.value.request_sent is True
    assert str(raised.value).startswith("acme unreachable: ReadError: [SSL: ")
    assert server.requests == 1
