"""What ``signoff serve`` runs: the Slack app over a backend (with what the backend runs in
this process, such as the embedded engine's worker and timers), and its HTTP listener."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Backend
from signoff.bot.config import BotSettings
from signoff.bot.errors import TokenRefused
from signoff.bot.slack.answering import Answerer
from signoff.bot.slack.app import (
    HTTP_THREADS,
    check_slack,
    create_app,
    create_client,
    form_sealer,
    start_notifier,
)
from signoff.bot.slack.approvers import Approvers
from signoff.bot.slack.edge import SlackEdge
from signoff.bot.slack.form_schemas import FormSchemas
from signoff.bot.slack.input_forms import InputForms
from signoff.bot.slack.listener import AtOnce, HttpListener, StartResponse, WsgiApp, http_url
from signoff.bot.slack.metrics import Metrics, count_body_too_large, observe_timer
from signoff.bot.slack.payloads import MAX_BODY_BYTES
from signoff.bot.slack.socket_mode import TOKEN_REFUSED, SocketModeHandler
from signoff.bot.stopping import stop_step

logger = logging.getLogger(__name__)

#: how long stop() waits for the Socket Mode client's own threads once it has disconnected
SOCKET_MODE_CLOSE_SECONDS = 10.0
#: how long stop() waits for listeners already acknowledged to finish (one stuck on a
#: Slack that does not answer is left behind: stopping must end)
LISTENERS_STOP_SECONDS = 10.0
#: how often the Socket Mode client pings Slack and looks at its connection: a connection
#: closed is opened again within about this, one gone silent within four times it (Bolt's
#: 10 s made a close cost 10 s of missed requests, and a silent connection 40 s or more)
SOCKET_MODE_PING_SECONDS = 2.0
#: how soon a Socket Mode connection Slack would not open at start is asked for again
#: (doubling up to the second)
SOCKET_MODE_RETRY_SECONDS = (1.0, 30.0)


def _refused_app_token(exc: Exception) -> None:
    """Raise ``TokenRefused`` if ``exc`` is Slack refusing ``SLACK_APP_TOKEN`` itself."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error"))
        if error in TOKEN_REFUSED:
            raise TokenRefused("SLACK_APP_TOKEN", error) from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"HTTP {exc.response.status_code}, {exc.response.get('error')}"
    return str(exc) or type(exc).__name__


#: the methods each route answers; any other method gets 405 naming these in ``Allow``
#: (HEAD as GET without the body: uvicorn leaves the body out)
_METHODS = {
    "/healthz": ("GET", "HEAD"),
    "/readyz": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/slack/events": ("POST",),
}


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: tuple[tuple[str, str], ...] = (),
) -> Iterable[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


def _not_allowed(start_response: StartResponse, method: str, path: str) -> Iterable[bytes]:
    """405 for ``method`` on ``path``, with ``Allow`` naming what it answers."""
    allowed = _METHODS[path]
    body = f"{method} not allowed on {path}; use {' or '.join(allowed)}.".encode()
    allow = (("Allow", ", ".join(allowed)),)
    return _respond(start_response, "405 Method Not Allowed", body, "text/plain", allow)


def method_allowed(environ: dict[str, Any]) -> bool:
    """Whether the request's method is one its route answers (unknown routes: any)."""
    allowed = _METHODS.get(environ.get("PATH_INFO", ""))
    return allowed is None or environ.get("REQUEST_METHOD") in allowed


def wsgi_app(
    slack: Callable[[dict[str, Any], StartResponse], Iterable[bytes]] | None,
    backend: Backend,
    *,
    ready: Callable[[], str | None] = lambda: None,
    metrics: Metrics | None = None,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """``POST /slack/events`` to ``slack`` (the edge in front of Bolt; HTTP mode only), and
    in both modes ``GET /healthz`` (the backend answers), ``GET /readyz`` (and the process
    is ready: ``ready()`` returns None, or why not) and ``GET /metrics`` (Prometheus);
    another method on those routes 405, anything else 404."""
    metrics = metrics or Metrics(backend)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        served = path != "/slack/events" or slack is not None  # Socket Mode: 404
        if path in _METHODS and served and not method_allowed(environ):
            return _not_allowed(start_response, environ.get("REQUEST_METHOD", ""), path)
        if path in ("/healthz", "/readyz"):
            try:
                backend.check()
                problem = ready() if path == "/readyz" else None
            except Exception:
                problem = "database unavailable"
            if problem is None:
                return _respond(start_response, "200 OK", b'{"ok": true}', "application/json")
            body = json.dumps({"ok": False, "error": problem}).encode()
            return _respond(start_response, "503 Service Unavailable", body, "application/json")
        if path == "/metrics":
            body, content_type = metrics.exposition()
            return _respond(start_response, "200 OK", body, content_type)
        if path == "/slack/events" and slack is not None:
            result: Iterable[bytes] = slack(environ, start_response)
            return result
        return _respond(start_response, "404 Not Found", b"not found", "text/plain")

    return application


class Server:
    """Everything ``signoff serve`` runs, startable in a thread (tests, the demo) or blocking."""

    def __init__(
        self,
        backend: Backend,
        settings: BotSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.client = create_client(settings)
        self.answers: Answerer | None = Answerer(backend, self.client)
        self.forms = InputForms(backend, FormSchemas(), form_sealer(settings), self.answers)
        #: user groups' members, one cache for the app's rules and the notifier's messages
        self.groups = Approvers(self.client)
        self.app = create_app(
            backend,
            settings,
            self.client,
            auth=check_slack(settings),
            forms=self.forms,
            # Over HTTP every request comes through SlackEdge (see start).
            behind_edge=not settings.socket_mode,
            groups=self.groups,
        )
        self.host, self.port = host, port
        #: the WSGI application the HTTP listener serves (set by ``start``)
        self.application: WsgiApp | None = None
        self._listener: HttpListener | None = None
        self._socket_handler: Any = None
        self._socket_retry: threading.Thread | None = None
        self._stopping = threading.Event()
        self._notifier: Any = None
        #: why this process can no longer serve Slack (Slack refused SLACK_APP_TOKEN while
        #: it ran), once ``failed`` is set; ``signoff serve`` then stops and exits 1
        self.failure: TokenRefused | None = None
        self.failed = threading.Event()

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self) -> None:
        """Start the backend (the embedded engine's worker), the notifier, Socket Mode (when configured) and the HTTP listener.

        The HTTP listener serves Slack's requests in HTTP mode; in Socket Mode it serves only
        ``/healthz``, ``/readyz`` and ``/metrics``.
        """
        edge: SlackEdge | None = None
        if not self.settings.app_token:
            edge = SlackEdge(
                SlackRequestHandler(self.app),
                self.backend,
                self.settings.signing_secret or "",
                forms=self.forms.acknowledge,
            )
        self.application = wsgi_app(
            self.answers.ahead_of_answers(edge) if self.answers and edge else edge,
            self.backend,
            ready=self.not_ready,
        )
        self._listener = HttpListener(
            self.application,
            host=self.host,
            port=self.port,
            threads=HTTP_THREADS,
            at_once=self._at_once(edge) if edge else None,
            max_body=MAX_BODY_BYTES,
            too_large=count_body_too_large if edge else None,
        )
        # The address first: a second `serve` on a port in use stops here, before its
        # worker claims runs or its Socket Mode connection takes Slack's deliveries.
        self._listener.bind()
        # The notifier before the worker: a first-ever subscription starts at the newest
        # event.
        self._notifier = start_notifier(self.backend, self.settings, self.client, self.groups)
        self.backend.on_timer_fired(observe_timer)
        self.backend.start()
        if self.settings.app_token:
            self._connect_socket_mode(self.settings.app_token)
        self._listener.start()
        self.port = self._listener.port
        logger.info("serving", extra={"action": "serve_http", "url": self.url})

    def _connect_socket_mode(self, app_token: str) -> None:
        """Open the Socket Mode connection. A token Slack refuses stops the start
        (``TokenRefused``); Slack rate-limiting or failing to open one is waited out in
        the background, ``/readyz`` saying so meanwhile, as a connection lost later is.
        A token Slack refuses later (revoked) sets ``failed`` (see ``_app_token_refused``)."""
        handler = SocketModeHandler(self.app, app_token, ping_interval=SOCKET_MODE_PING_SECONDS)
        self._socket_handler = handler
        try:
            handler.connect()
        except (SlackApiError, OSError) as exc:
            _refused_app_token(exc)
            handler.client.on_app_token_refused = self._app_token_refused
            logger.warning(
                "cannot open a Socket Mode connection yet (%s); trying again",
                _why(exc),
                extra={"action": "socket_mode_unavailable"},
            )
            self._socket_retry = threading.Thread(
                target=self._keep_connecting,
                args=(handler,),
                name="signoff-socket-mode-connect",
                daemon=True,
            )
            self._socket_retry.start()
            return
        # Only now: a token refused at start is raised above, not reported twice.
        handler.client.on_app_token_refused = self._app_token_refused
        if not self.socket_mode_connected:
            # Slack gave a URL, but the WebSocket to it did not open (a proxy that lets the
            # Web API through, say): slack_sdk's client logs why and tries again itself.
            logger.warning(
                "Slack gave a Socket Mode URL, but the WebSocket to it did not open; trying again",
                extra={"action": "socket_mode_unavailable"},
            )
            return
        logger.info("connected in Socket Mode", extra={"action": "serve_socket_mode"})

    def _app_token_refused(self, error: str) -> None:
        """Slack refused SLACK_APP_TOKEN while this process ran (revoked, most likely).

        The client stops reconnecting: a revoked token stays revoked, and a process that
        keeps running looks healthy while nobody's click or command reaches it. So, as at
        start, it is an error an operator must mend (a new app-level token): ``failed`` is
        set, and ``signoff serve`` stops and exits 1. The client calls this once.
        """
        self.failure = TokenRefused("SLACK_APP_TOKEN", error)
        logger.error(
            "%s; the Socket Mode connection is closed and not opened again. Generate a new "
            "app-level token (connections:write) and restart with it; SLACK_BOT_TOKEN is "
            "not affected",
            self.failure,
            extra={"action": "socket_mode_app_token_refused", "error": error},
        )
        self.failed.set()

    def _keep_connecting(self, handler: Any) -> None:
        delay = SOCKET_MODE_RETRY_SECONDS[0]
        tries = 1
        while not self._stopping.wait(delay):
            tries += 1
            try:
                handler.connect()
            except (SlackApiError, OSError) as exc:
                if self.failed.is_set():
                    return  # the token was refused: said by _app_token_refused
                delay = min(delay * 2, SOCKET_MODE_RETRY_SECONDS[1])
                logger.debug(
                    "Socket Mode connection still refused: %s",
                    _why(exc),
                    extra={"action": "socket_mode_unavailable"},
                )
                continue
            logger.info(
                "connected in Socket Mode after %d tries",
                tries,
                extra={"action": "serve_socket_mode"},
            )
            return

    def _at_once(self, edge: SlackEdge) -> AtOnce:
        """What the listener answers on its event loop: Slack's requests that the edge can
        answer without I/O (see ``SlackEdge.answer_at_once``)."""
        answers = self.answers

        def at_once(
            environ: dict[str, Any], start_response: StartResponse
        ) -> Iterable[bytes] | None:
            if environ["PATH_INFO"] != "/slack/events" or not method_allowed(environ):
                return None  # the application answers (a GET: 405, before any signature check)
            if answers is None:
                return edge.answer_at_once(environ, start_response)
            with answers.acknowledging():
                return edge.answer_at_once(environ, start_response)

        return at_once

    @property
    def socket_mode_connected(self) -> bool:
        """Whether the Socket Mode connection to Slack is open now (False in HTTP mode)."""
        handler = self._socket_handler
        return handler is not None and bool(handler.client.is_connected())

    def not_ready(self) -> str | None:
        """Why this process cannot take Slack's traffic now (``/readyz``), or None."""
        if self._socket_handler is not None and not self._socket_handler.client.is_connected():
            return "the Socket Mode connection to Slack is down"
        return self.backend.not_ready()

    def stop(self) -> None:
        """Stop everything ``start`` started; a second call does nothing."""
        self._stopping.set()
        if self._socket_retry is not None:
            with stop_step("Socket Mode reconnection"):
                # Between tries it stops at once; within one, when Slack answers it.
                self._socket_retry.join(SOCKET_MODE_CLOSE_SECONDS)
            self._socket_retry = None
        if self._listener is not None:
            # Finishes the requests in flight before it closes their sockets.
            listener, self._listener = self._listener, None
            with stop_step("HTTP listener"):
                listener.stop()
        if self._socket_handler is not None:
            self._socket_handler, handler = None, self._socket_handler
            # slack_sdk disconnects first, then joins its own threads without a timeout; one
            # of those joins never returned in CI. Bound the wait, so that stopping ends.
            closer = threading.Thread(
                target=handler.close, name="signoff-socket-mode-close", daemon=True
            )
            with stop_step("Socket Mode connection"):
                closer.start()
                closer.join(SOCKET_MODE_CLOSE_SECONDS)
            if closer.is_alive():
                logger.warning(
                    "Socket Mode client still closing; stopping without it",
                    extra={"action": "serve_stop_socket_mode_stuck"},
                )
        # No more requests come in: the clicks and commands already acknowledged finish the
        # work Bolt runs after each acknowledgement (a modal opened, a reply posted) before
        # the backend and the Slack poster stop under them.
        listeners = self.app.listener_runner.listener_executor
        finishing = threading.Thread(
            target=listeners.shutdown, name="signoff-listeners-stop", daemon=True
        )
        with stop_step("Slack listeners"):
            finishing.start()
            finishing.join(LISTENERS_STOP_SECONDS)
        answers, self.answers = self.answers, None
        if answers is not None:
            # No more submissions come in: finish the answers already acknowledged.
            with stop_step("answers acknowledged"):
                answers.stop()
        if self._notifier is not None:
            self._notifier, notifier = None, self._notifier
            with stop_step("Slack poster"):
                notifier.stop()
        with stop_step("backend"):
            self.backend.stop()
