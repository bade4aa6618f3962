"""Socket Mode as Slack serves it: connection URLs, the WebSocket endpoint, envelopes and acks.

An app in Socket Mode (slack-platform.md §5.3) calls ``apps.connections.open`` with its
app-level token (``xapp-...``) and gets ``ws://127.0.0.1:<port>/link/?ticket=...``. It opens a
WebSocket there and is greeted with ``{"type": "hello", ...}``. From then on Slack pushes each
request as an envelope::

    {"envelope_id": "...", "type": "slash_commands" | "interactive" | "events_api",
     "payload": {...}, "accepts_response_payload": true}

and the app acknowledges it on the same socket with ``{"envelope_id": "...", "payload": {...}}``.
:class:`SocketModeDriver` delivers the driver's requests this way and returns the ack as an
:class:`~bot.sandbox.records.AppResponse`::

    with SlackSandbox() as slack:
        handler = SocketModeHandler(app, "xapp-1-test")   # app.client uses slack.api_url
        handler.connect()
        driver = slack.socket_driver()
        assert driver.slash_command("alice", "/runs", "help").status == 200

The endpoint pings every client every ``ping_interval`` seconds (0.1 by default). Clients must
answer with pongs anyway; the short interval also lets slack_sdk's client close promptly, since
its ``close()`` waits for a socket read that otherwise blocks for up to 3 seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.driver import Delivery, Driver
from bot.sandbox.errors import (
    ApiFailure,
    AppNotConnected,
    ConditionTimeout,
    NotAcknowledged,
    SandboxNotRunning,
)
from bot.sandbox.records import AppResponse, JsonDict
from bot.sandbox.websocket import GOING_AWAY, WebSocket, accept_key
from bot.sandbox.workspace import Workspace

__all__ = ["SocketModeDriver", "SocketModeServer"]

logger = logging.getLogger(__name__)

_PATH = "/link/"
#: Seconds a client gets to send its opening handshake; afterwards reads block indefinitely.
_HANDSHAKE_TIMEOUT = 5.0
#: Seconds a client gets to drop its end after the sandbox's close frame.
_CLOSE_GRACE = 1.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: SocketModeServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = _HANDSHAKE_TIMEOUT
    # Frames are small and answered at once; Nagle would hold a ping behind an unacked envelope.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.endpoint.serve(self)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path only: the query carries the connection ticket.
        logger.debug(
            "GET %s -> %s",
            urlsplit(self.path).path,
            code,
            extra={"action": "sandbox_socket_mode_http"},
        )

    def log_message(self, format: str, *args: Any) -> None:
        # Only the format: its arguments may echo the raw request line, ticket included.
        logger.debug(format, extra={"action": "sandbox_socket_mode_message"})


class _Envelope:
    """One delivery waiting for its ack."""

    def __init__(self, connection: WebSocket) -> None:
        self.connection = connection
        self.answered = False
        self.ack: JsonDict | None = None


class SocketModeServer:
    """The WebSocket endpoint of Socket Mode, on ``127.0.0.1`` and an ephemeral port.

    Args:
        workspace: The workspace whose app connects (its ``app_id`` goes into ``hello``).
        ping_interval: Seconds between the pings sent to every connected client.
    """

    def __init__(self, workspace: Workspace, *, ping_interval: float = 0.1) -> None:
        self.workspace = workspace
        self.ping_interval = ping_interval
        self._cond = threading.Condition()
        self._tickets: set[str] = set()
        self._connections: list[WebSocket] = []
        self._handlers: set[threading.Thread] = set()
        self._envelopes: dict[str, _Envelope] = {}
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (only while running)."""
        if self._server is None:
            raise SandboxNotRunning("start the sandbox first (use it as a context manager)")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Listen, and ping connected clients, on daemon threads."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", 0), _Handler)
        server.endpoint = self
        self._server = server
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="sandbox-socket-mode",
                daemon=True,
            ),
            threading.Thread(target=self._ping, name="sandbox-socket-mode-ping", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop listening, then close every connection (code 1001, going away).

        Clients get a moment to drop their end after the close frame, as §7.1 has them do;
        connections still open after that are cut.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()  # refuse new connections at once, reconnecting clients included
        with self._cond:
            connections, handlers = list(self._connections), list(self._handlers)
            self._tickets.clear()
        for connection in connections:
            connection.close(GOING_AWAY, "sandbox stopped")
        grace_ends = time.monotonic() + _CLOSE_GRACE
        for thread in handlers:
            thread.join(timeout=max(0.0, grace_ends - time.monotonic()))
        for connection in connections:
            connection.abort()
        for thread in [*handlers, *self._threads]:
            thread.join(timeout=_CLOSE_GRACE)

    def _ping(self) -> None:
        while not self._stopping.wait(self.ping_interval):
            with self._cond:
                connections = list(self._connections)
            for connection in connections:
                connection.ping(b"sandbox")

    # -- connecting -------------------------------------------------------------------------

    def open_url(self) -> str:
        """A new WebSocket URL with its own ticket (what ``apps.connections.open`` answers).

        Raises:
            ApiFailure: ``service_unavailable`` (503) while the endpoint is not running.
        """
        server = self._server
        if server is None:
            raise ApiFailure("service_unavailable", status=503)
        ticket = secrets.token_urlsafe(16)
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{server.server_address[1]}{_PATH}?ticket={ticket}"

    @property
    def connections(self) -> int:
        """How many clients are connected now."""
        with self._cond:
            return sum(1 for c in self._connections if c.open)

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Wait until exactly ``count`` clients are connected (0: until all have gone).

        Raises:
            ConditionTimeout: Still a different number after ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections == count, timeout):
                raise ConditionTimeout(
                    f"{self.connections} Socket Mode connections after {timeout}s, not {count}"
                )

    def _refuse(self, request: _Handler) -> str | None:
        """Why the opening handshake is refused, or None to accept it."""
        parts = urlsplit(request.path)
        if parts.path != _PATH:
            request.send_error(404, "Socket Mode connections open on /link/")
            return "not_found"
        ticket = (parse_qs(parts.query).get("ticket") or [""])[-1]
        with self._cond:
            known = ticket in self._tickets
        if not known:
            request.send_error(401, "unknown ticket: call apps.connections.open first")
            return "invalid_ticket"
        headers = request.headers
        connection = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
            request.send_error(400, "expected a WebSocket upgrade")
            return "not_websocket"
        if headers.get("Sec-WebSocket-Version", "").strip() != "13":
            request.send_response(426, "Upgrade Required")
            request.send_header("Sec-WebSocket-Version", "13")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return "bad_version"
        try:
            nonce = base64.b64decode(headers.get("Sec-WebSocket-Key", ""), validate=True)
        except binascii.Error:
            nonce = b""
        if len(nonce) != 16:
            request.send_error(400, "Sec-WebSocket-Key must be 16 bytes, base64")
            return "bad_key"
        return None

    def serve(self, request: _Handler) -> None:
        """Run one connection, handshake to close (on the connection's server thread)."""
        request.close_connection = True
        refused = self._refuse(request)
        if refused:
            logger.debug(
                "refused a Socket Mode connection: %s",
                refused,
                extra={"action": "sandbox_socket_mode_refused", "reason": refused},
            )
            return
        request.connection.settimeout(None)  # a quiet app is not a dead one
        connection = WebSocket(request.rfile.read, request.connection)
        with self._cond:
            if self._stopping.is_set():
                request.send_error(503, "the sandbox is stopping")
                return
            # Under the lock, so that the connection counts as soon as the client sees the 101,
            # and no envelope can overtake the hello.
            request.send_response(101, "Switching Protocols")
            request.send_header("Upgrade", "websocket")
            request.send_header("Connection", "Upgrade")
            request.send_header(
                "Sec-WebSocket-Accept", accept_key(request.headers["Sec-WebSocket-Key"])
            )
            try:
                request.end_headers()
            except OSError:
                return  # the client gave up while we were answering
            self._connections.append(connection)
            self._handlers.add(threading.current_thread())
            count = len(self._connections)
            connection.send_text(json.dumps(self._hello(count)))
            self._cond.notify_all()
        logger.info(
            "app connected in Socket Mode",
            extra={"action": "sandbox_socket_mode_connected", "connections": count},
        )
        try:
            while (text := connection.receive()) is not None:
                self._acknowledge(text)
        finally:
            with self._cond:
                self._connections.remove(connection)
                self._handlers.discard(threading.current_thread())
                self._cond.notify_all()
            logger.info(
                "Socket Mode connection closed (%s)",
                connection.close_code,
                extra={"action": "sandbox_socket_mode_closed", "code": connection.close_code},
            )

    def _hello(self, count: int) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "sandbox",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.workspace.app_id},
        }

    # -- envelopes --------------------------------------------------------------------------

    def _acknowledge(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._cond:
            envelope = self._envelopes.get(str(envelope_id))
            if envelope is None or not isinstance(message, dict):
                logger.warning(
                    "the app sent something that acks no pending envelope",
                    extra={"action": "sandbox_socket_mode_stray_message"},
                )
                return
            payload = message.get("payload")
            envelope.ack = payload if isinstance(payload, dict) else None
            envelope.answered = True
            self._cond.notify_all()

    def _live(self) -> WebSocket | None:
        """The newest open connection (Slack spreads envelopes; one app needs just one)."""
        return next((c for c in reversed(self._connections) if c.open), None)

    def deliver(
        self, kind: Delivery, payload: Mapping[str, Any], *, timeout: float = 10.0
    ) -> AppResponse:
        """Push one envelope to the app and wait for its ack.

        Args:
            kind: The envelope ``type``.
            payload: The envelope's ``payload``.
            timeout: Seconds to wait for a connection and then for the ack.

        Returns:
            Status 200 with the ack's ``payload`` as ``json`` (None for an empty ack).

        Raises:
            AppNotConnected: No app connected within ``timeout``.
            NotAcknowledged: No ack within ``timeout``, or the connection closed first.
        """
        deadline = time.monotonic() + timeout
        envelope_id = str(uuid.uuid4())
        envelope: JsonDict = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            # Events cannot be answered in the ack; commands and interactions can.
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        with self._cond:
            connection = None
            if self._cond.wait_for(lambda: self._live() is not None, timeout):
                connection = self._live()
            if connection is None:
                raise AppNotConnected(f"no app connected in Socket Mode within {timeout}s")
            pending = self._envelopes[envelope_id] = _Envelope(connection)
        try:
            connection.send_text(json.dumps(envelope))
            with self._cond:
                self._cond.wait_for(
                    lambda: pending.answered or not connection.open,
                    max(0.0, deadline - time.monotonic()),
                )
        finally:
            with self._cond:
                self._envelopes.pop(envelope_id, None)
        if not pending.answered:
            why = "the connection closed first" if not connection.open else f"none in {timeout}s"
            raise NotAcknowledged(f"the app did not ack the {kind} envelope: {why}")
        ack = pending.ack or None
        logger.debug(
            "%s envelope acked",
            kind,
            extra={"action": "sandbox_socket_mode_ack", "kind": kind, "payload": bool(ack)},
        )
        body = json.dumps(ack).encode() if ack else b""
        return AppResponse(200, body, {}, ack)


class SocketModeDriver(Driver):
    """A :class:`~bot.sandbox.driver.Driver` for an app connected in Socket Mode.

    Each action becomes an envelope on the app's WebSocket; the ack is the
    :class:`~bot.sandbox.records.AppResponse`. Get one from
    :meth:`bot.sandbox.SlackSandbox.socket_driver`.

    Args:
        workspace: The sandbox workspace.
        sandbox_url: Base URL of the sandbox server, for response_urls.
        server: The Socket Mode endpoint the app is connected to.
        timeout: Seconds to wait for a connection and for each ack.
    """

    def __init__(
        self,
        workspace: Workspace,
        sandbox_url: str,
        server: SocketModeServer,
        *,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(workspace, sandbox_url)
        self.server = server
        self.timeout = timeout

    def deliver(self, kind: Delivery, payload: Mapping[str, Any]) -> AppResponse:
        """Push ``payload`` in a ``kind`` envelope and return the ack (see :meth:`Driver.deliver`).

        Raises:
            AppNotConnected: No app is connected in Socket Mode.
            NotAcknowledged: The app did not ack in time.
        """
        return self.server.deliver(kind, payload, timeout=self.timeout)
