"""The HTTP listener of ``signoff serve``: uvicorn on an event loop thread of its own, in
front of the bot's WSGI application.

Slack's traffic comes in bursts (a release waiting on a dozen approvers, a thousand people
answering a poll), and each request must be answered within 3 s. A thread-per-request
WSGI server parses every request in Python on one thread and hands it to another and back;
with the interpreter lock that cost about half a millisecond per request on top of the
bot's own work. Here uvicorn reads each request with httptools (in C) and:

- a request that ``at_once`` can answer without waiting on anything (an input form's
  submission: signature, parsing, the form's checks, all in memory) is answered on the
  loop itself, with no hand-off;
- every other request runs the WSGI application on a pool of ``threads`` threads, since
  it may wait on the database or on Bolt's listeners.

A body longer than ``max_body`` gets 413 without being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

__all__ = [
    "AtOnce",
    "HttpListener",
    "StartResponse",
    "TooLarge",
    "WsgiApp",
    "address_family",
    "http_url",
    "wsgi_environ",
]

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: Answers a request on the event loop, or returns None to leave it to the pool. Called
#: like a WSGI application; it must not block.
AtOnce = Callable[[dict[str, Any], StartResponse], Iterable[bytes] | None]
#: Told the path of each request refused for its size (for the metrics); must not block.
TooLarge = Callable[[str], None]

#: connections the kernel holds for the listener while it is busy (a burst of submissions
#: arrives as one connection each)
BACKLOG = 2048
#: how long ``stop`` lets requests in flight finish
STOP_SECONDS = 5
#: how long ``start`` waits for the loop to take connections
START_SECONDS = 10.0

#: how often ``stop`` looks whether the requests in flight are done
STOP_POLL_SECONDS = 0.005

_Response = tuple[int, list[tuple[bytes, bytes]], bytes]


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as ``exit`` is called. uvicorn looks whether it
    should exit every 0.1 s, and waits 0.1 s more after closing its connections, whatever
    is in flight; every stop took about 0.2 s (a second of each test run in twenty)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def exit(self) -> None:
        """Begin the graceful shutdown (from any thread)."""
        self.should_exit = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        # Set before the first tick reads ``should_exit``: an ``exit`` that finds no loop
        # yet is seen by that tick.
        self._loop = asyncio.get_running_loop()
        counter = 0
        # Each tick refreshes the Date header (every tenth) and reads ``should_exit``.
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop taking connections, close the idle ones, and wait for the requests in
        flight (``timeout_graceful_shutdown`` at most; then they are cancelled)."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # closes it when idle, else once its response is sent
        deadline = time.monotonic() + (self.config.timeout_graceful_shutdown or 0)
        while (state.connections or state.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(STOP_POLL_SECONDS)
        if state.connections or state.tasks:
            logger.error(
                "requests still in flight after %s s; cancelling them",
                self.config.timeout_graceful_shutdown,
                extra={"action": "http_stop_cancelled", "requests": len(state.tasks)},
            )
            for task in state.tasks:
                task.cancel()
        for server in self.servers:
            await server.wait_closed()


class _Collected:
    """A WSGI ``start_response`` that keeps what it was given."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = int(status.split(" ", 1)[0])
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _run(
    application: Callable[..., Iterable[bytes] | None], environ: dict[str, Any]
) -> _Response | None:
    collected = _Collected()
    result = application(environ, collected)
    if result is None:
        return None
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return collected.status, collected.headers, body


def _plain(status: int, text: str) -> _Response:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    return status, [*headers, (b"content-length", str(len(body)).encode())], body


def wsgi_environ(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of the ASGI request ``scope`` with ``body``."""
    server = scope.get("server") or ("localhost", 0)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": str(client[0]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name == "CONTENT_LENGTH":
            continue  # the body as read is what counts
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def address_family(host: str) -> socket.AddressFamily:
    """The socket family that listens on ``host``: IPv6 for an IPv6 address (``::1``, ``::``)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def http_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets (``http://[::1]:3000``):
    unbracketed, no browser nor curl can parse it."""
    return (
        f"http://[{host}]:{port}"
        if address_family(host) == socket.AF_INET6
        else f"http://{host}:{port}"
    )


def listen_failure(host: str, port: int, exc: OSError) -> str:
    """One line saying why ``host:port`` cannot be listened on (in use, not this machine's
    address, a name that does not resolve)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot listen on {host}:{port}: {reason}"


class HttpListener:
    """Serves ``application`` over HTTP from a thread of its own.

    Example::

        listener = HttpListener(app, host="127.0.0.1", port=0)
        listener.start()  # returns once connections are taken
        print(listener.port)
        listener.stop()  # finishes the requests in flight first

    Args:
        application: The bot's WSGI application.
        host, port: Where to listen (port 0: any free port; ``port`` then tells which).
        threads: The pool that runs ``application``.
        at_once: Answers what it can on the loop (see the module's docstring).
        max_body: Longest body read; a longer one gets 413.
        too_large: Told the path of each request refused so (the application never sees
            it, so it cannot count it itself).
    """

    def __init__(
        self,
        application: WsgiApp,
        *,
        host: str,
        port: int,
        threads: int,
        at_once: AtOnce | None = None,
        max_body: int,
        too_large: TooLarge | None = None,
    ) -> None:
        self.application = application
        self.at_once = at_once
        self.max_body = max_body
        self.too_large = too_large
        self.host, self.port = host, port
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def bind(self) -> None:
        """Take the address (``port`` then tells which), before anything else starts: a
        port in use must stop a process before it takes work. Connections made before
        ``start`` wait in the backlog. ``start`` binds if this was not called.

        Raises:
            OSError: the address cannot be bound (in use, say).
        """
        if self._socket is not None:
            return
        sock = socket.socket(address_family(self.host))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        self._socket = sock

    def start(self) -> None:
        """Listen (``bind``), and return once the loop takes connections.

        Raises:
            OSError: the address cannot be bound (in use, say).
            RuntimeError: the loop did not start within ``START_SECONDS``.
        """
        self.bind()
        sock = self._socket
        assert sock is not None
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="signoff-http")
        config = uvicorn.Config(
            self._asgi,
            http="httptools",
            ws="none",
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            backlog=BACKLOG,
            timeout_graceful_shutdown=STOP_SECONDS,
            server_header=False,
        )
        server = self._server = _Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="signoff-http-loop", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the HTTP listener on {self.host}:{self.port} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop taking connections, let requests in flight finish (``STOP_SECONDS`` at
        most), then stop the loop and the pool. A second call does nothing."""
        sock, self._socket = self._socket, None
        server, self._server = self._server, None
        if server is None and sock is not None:
            sock.close()  # bound, never started
        if server is not None:
            server.exit()
            if self._thread is not None:
                self._thread.join(STOP_SECONDS + 5)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        reply = await self._reply(scope, receive)
        status, headers, body = reply
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _reply(self, scope: dict[str, Any], receive: Any) -> _Response:
        body = await self._body(scope, receive)
        if body is None:
            logger.info(
                "request refused", extra={"action": "request_refused", "reason": "body_too_large"}
            )
            if self.too_large is not None:
                self.too_large(scope["path"])
            return _plain(413, "Request too large.")
        environ = wsgi_environ(scope, body)
        try:
            if self.at_once is not None and (reply := _run(self.at_once, environ)) is not None:
                return reply
            environ["wsgi.input"] = io.BytesIO(body)
            assert self._pool is not None
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(self._pool, _run, self.application, environ)
        except Exception:
            logger.exception(
                "HTTP request failed",
                extra={"action": "http_request_failed", "path": environ["PATH_INFO"][:200]},
            )
            return _plain(500, "Internal Server Error")
        assert reply is not None  # a WSGI application always answers
        return reply

    async def _body(self, scope: dict[str, Any], receive: Any) -> bytes | None:
        """The request's body, or None when it is longer than ``max_body`` (by its
        Content-Length, before any of it is read, or as it arrives)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    pass  # httptools refuses a malformed length before the app sees it
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)
