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

The WebSocket protocol itself (handshake, framing, pings, closing) is the ``websockets``
library's threaded server; this module adds what is Slack's: tickets, ``hello``, envelopes.

The endpoint pings every client every ``ping_interval`` seconds (0.1 by default). Clients must
answer with pongs anyway; the short interval also lets slack_sdk's client close promptly, since
its ``close()`` waits for a socket read that otherwise blocks for up to 3 seconds.
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from signoff.bot.sandbox.driver import Delivery, Driver
from signoff.bot.sandbox.errors import (
    ApiFailure,
    AppNotConnected,
    ConditionTimeout,
    NotAcknowledged,
    SandboxNotRunning,
)
from signoff.bot.sandbox.records import AppResponse, JsonDict
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["MAX_MESSAGE", "SocketModeDriver", "SocketModeServer"]

logger = logging.getLogger(__name__)
# The library's own log lines. Its debug lines echo the request line, connection ticket
# included, so they stop at INFO whatever the root level.
_protocol_logger = logging.getLogger(f"{__name__}.protocol")
_protocol_logger.setLevel(logging.INFO)


class _RefusedHandshakeLine(logging.Filter):
    """The library logs a client's malformed handshake (which the client was already
    answered with a 4xx) as an ERROR with a traceback; it is the client's mistake, said in
    one warning line with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "opening handshake failed" and record.exc_info:
            reason = record.exc_info[1]
            record.msg = "Socket Mode client's opening handshake refused: %s"
            record.args = (reason,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
            record.action = "socket_handshake_refused"
        return True


_protocol_logger.addFilter(_RefusedHandshakeLine())

_PATH = "/link/"
#: Seconds a client gets to send its opening handshake.
_HANDSHAKE_TIMEOUT = 5.0
#: Seconds a client gets to answer the sandbox's close frame before the connection is cut.
_CLOSE_GRACE = 1.0
#: Socket Mode envelopes are JSON of at most a few hundred KB; refuse anything absurd.
MAX_MESSAGE = 4 * 1024 * 1024


class _Envelope:
    """One delivery waiting for its ack."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.answered = False
        self.ack: JsonDict | None = None


def _is_open(connection: ServerConnection) -> bool:
    return connection.state is State.OPEN


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
        self._connections: list[ServerConnection] = []
        self._handlers: set[threading.Thread] = set()
        self._envelopes: dict[str, _Envelope] = {}
        self._server: Server | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: how many of the next opening handshakes are refused (``refuse_connections``)
        self._to_refuse = 0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (only while running)."""
        if self._server is None:
            raise SandboxNotRunning("start the sandbox first (use it as a context manager)")
        return self._port

    def start(self) -> None:
        """Listen on a daemon thread; each connection gets a thread of its own."""
        if self._server is not None:
            return
        self._stopping.clear()
        server = serve(
            self._run,
            "127.0.0.1",
            0,
            process_request=self._refuse,
            compression=None,  # Slack's endpoint negotiates no extension either
            open_timeout=_HANDSHAKE_TIMEOUT,
            ping_interval=self.ping_interval,
            # Slack does not drop a client for a late pong within a session; neither do we.
            ping_timeout=None,
            close_timeout=_CLOSE_GRACE,
            max_size=MAX_MESSAGE,
            logger=_protocol_logger,
        )
        self._server = server
        self._port = int(server.socket.getsockname()[1])
        self._thread = threading.Thread(
            target=server.serve_forever, name="sandbox-socket-mode", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening, then close every connection (code 1001, going away).

        Each client gets ``_CLOSE_GRACE`` seconds to answer the close frame, as RFC 6455 §7.1
        has it do (slack_sdk's client drops the connection instead, which ends it as well);
        connections still open after that are cut by the library.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()  # refuses new connections at once, reconnecting clients included
        if self._thread is not None:
            self._thread.join(timeout=_CLOSE_GRACE)
        with self._cond:
            connections, handlers = list(self._connections), list(self._handlers)
            self._tickets.clear()
        closers = [
            threading.Thread(
                target=connection.close,
                args=(CloseCode.GOING_AWAY, "sandbox stopped"),
                name="sandbox-socket-mode-close",
                daemon=True,
            )
            for connection in connections
        ]
        for thread in closers:
            thread.start()
        for thread in [*closers, *handlers]:
            thread.join(timeout=2 * _CLOSE_GRACE)

    def close_connections(self, code: CloseCode = CloseCode.GOING_AWAY) -> int:
        """Close every open connection from Slack's side (as Slack does, unannounced, when
        it moves a connection), and keep listening for the clients to come back; how many."""
        with self._cond:
            connections = [c for c in self._connections if _is_open(c)]
        for connection in connections:
            connection.close(code, "closed by the sandbox")
        return len(connections)

    # -- connecting -------------------------------------------------------------------------

    def open_url(self) -> str:
        """A new WebSocket URL with its own ticket (what ``apps.connections.open`` answers).

        Raises:
            ApiFailure: ``service_unavailable`` (503) while the endpoint is not running.
        """
        if self._server is None:
            raise ApiFailure("service_unavailable", status=503)
        ticket = secrets.token_urlsafe(16)
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self._port}{_PATH}?ticket={ticket}"

    def refuse_connections(self, count: int) -> None:
        """Refuse the next ``count`` opening handshakes with 503, as a proxy or firewall
        that lets the Web API through but not WebSockets would: ``apps.connections.open``
        still answers a URL."""
        with self._cond:
            self._to_refuse = count

    @property
    def connections(self) -> int:
        """How many clients are connected now."""
        with self._cond:
            return sum(1 for c in self._connections if _is_open(c))

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

    def _refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        """Slack's part of the opening handshake: the path and the ticket.

        The library checks the WebSocket part itself (``Upgrade``, the key, the version) and
        answers a bad one with 400 or 426.
        """
        parts = urlsplit(request.path)
        ticket = (parse_qs(parts.query).get("ticket") or [""])[-1]
        with self._cond:
            known = ticket in self._tickets
            refused, self._to_refuse = self._to_refuse > 0, max(self._to_refuse - 1, 0)
        if self._stopping.is_set():
            reason, status, text = "stopping", http.HTTPStatus.SERVICE_UNAVAILABLE, "stopping"
        elif refused:
            reason, status, text = "refused", http.HTTPStatus.SERVICE_UNAVAILABLE, "refused"
        elif parts.path != _PATH:
            reason, status = "not_found", http.HTTPStatus.NOT_FOUND
            text = "Socket Mode connections open on /link/"
        elif not known:
            reason, status = "invalid_ticket", http.HTTPStatus.UNAUTHORIZED
            text = "unknown ticket: call apps.connections.open first"
        else:
            return None
        logger.debug(
            "refused a Socket Mode connection: %s",
            reason,
            extra={"action": "sandbox_socket_mode_refused", "reason": reason},
        )
        return connection.respond(status, text + "\n")

    def _run(self, connection: ServerConnection) -> None:
        """Serve one connection after its handshake (on the connection's own thread)."""
        with self._cond:
            # stop() closes what it finds registered; a latecomer closes itself here.
            stopping = self._stopping.is_set()
            if not stopping:
                self._connections.append(connection)
                self._handlers.add(threading.current_thread())
        if stopping:
            connection.close(CloseCode.GOING_AWAY, "sandbox stopped")
            return
        with self._cond:
            count = len(self._connections)
            # Under the lock, so that no envelope can overtake the hello.
            with contextlib.suppress(ConnectionClosed):  # the loop below ends at once
                connection.send(json.dumps(self._hello(count)))
            self._cond.notify_all()
        logger.info(
            "app connected in Socket Mode",
            extra={"action": "sandbox_socket_mode_connected", "connections": count},
        )
        try:
            while True:
                message = connection.recv()
                if isinstance(message, bytes):
                    connection.close(CloseCode.UNSUPPORTED_DATA, "Socket Mode speaks text")
                    break
                self._acknowledge(message)
        except ConnectionClosed:
            pass  # the client closed, or the library closed on a protocol violation
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

    def _live(self) -> ServerConnection | None:
        """The newest open connection (Slack spreads envelopes; one app needs just one)."""
        return next((c for c in reversed(self._connections) if _is_open(c)), None)

    def push_raw(
        self, text: str, *, envelope_id: str | None = None, timeout: float = 10.0
    ) -> JsonDict | None:
        """Send ``text`` as it is (a malformed envelope, say) on the app's connection; with
        ``envelope_id``, wait for the app to ack that id.

        Returns:
            The ack's ``payload`` (None for an empty ack, or without ``envelope_id``).

        Raises:
            AppNotConnected: No app connected within ``timeout``.
            NotAcknowledged: ``envelope_id`` was not acked within ``timeout``.
        """
        key = envelope_id if envelope_id is not None else f"unacked-{uuid.uuid4()}"
        pending = self._send(text, key, timeout, wait=envelope_id is not None)
        if envelope_id is None:
            return None
        if not pending.answered:
            raise NotAcknowledged(f"the app did not ack envelope {envelope_id} in {timeout}s")
        return pending.ack or None

    def _send(self, text: str, key: str, timeout: float, *, wait: bool = True) -> _Envelope:
        """Send ``text`` on the app's newest connection as envelope ``key`` and, with
        ``wait``, wait until the app acks it or the connection closes, ``timeout`` in all
        (a connection included). The envelope tells which came (``answered``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(lambda: self._live() is not None, timeout):
                raise AppNotConnected(f"no app connected in Socket Mode within {timeout}s")
            connection = self._live()
            assert connection is not None
            pending = self._envelopes[key] = _Envelope(connection)
        try:
            with contextlib.suppress(ConnectionClosed):  # the caller says "closed first"
                connection.send(text)
            if wait:
                with self._cond:
                    # The connection's thread notifies when it ends, so a close is seen at once.
                    self._cond.wait_for(
                        lambda: pending.answered or connection not in self._connections,
                        max(0.0, deadline - time.monotonic()),
                    )
        finally:
            with self._cond:
                self._envelopes.pop(key, None)
        return pending

    def deliver(
        self,
        kind: Delivery,
        payload: Mapping[str, Any],
        *,
        timeout: float = 10.0,
        retry: tuple[int, str] | None = None,
    ) -> AppResponse:
        """Push one envelope to the app and wait for its ack.

        Args:
            kind: The envelope ``type``.
            payload: The envelope's ``payload``.
            timeout: Seconds to wait for a connection and then for the ack.
            retry: (attempt, reason): the envelope delivers again what an earlier one did
                (``retry_attempt``, ``retry_reason``), as Slack does when no ack came in time.

        Returns:
            Status 200 with the ack's ``payload`` as ``json`` (None for an empty ack).

        Raises:
            AppNotConnected: No app connected within ``timeout``.
            NotAcknowledged: No ack within ``timeout``, or the connection closed first.
        """
        envelope_id = str(uuid.uuid4())
        envelope: JsonDict = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            # Events cannot be answered in the ack; commands and interactions can.
            "accepts_response_payload": kind != "events_api",
        }
        if retry is not None:
            envelope.update(retry_attempt=retry[0], retry_reason=retry[1])
        elif kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        pending = self._send(json.dumps(envelope), envelope_id, timeout)
        if not pending.answered:
            gone = not _is_open(pending.connection)
            why = "the connection closed first" if gone else f"none in {timeout}s"
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

    def _send(
        self, kind: Delivery, payload: Mapping[str, Any], retry: tuple[int, str] | None
    ) -> AppResponse:
        """Push ``payload`` in a ``kind`` envelope and return the ack (see :meth:`Driver.deliver`).

        Raises:
            AppNotConnected: No app is connected in Socket Mode.
            NotAcknowledged: The app did not ack in time.
        """
        return self.server.deliver(kind, payload, timeout=self.timeout, retry=retry)
