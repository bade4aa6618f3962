"""What ``signoff serve`` runs: the Slack app over a backend (with what the backend runs in
this process, such as the embedded engine's worker and timers), and its HTTP listener."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from signoff.bot.backends import Backend
from signoff.bot.config import BotSettings
from signoff.bot.slack.answering import Answerer, InputForms
from signoff.bot.slack.app import (
    HTTP_THREADS,
    check_slack,
    create_app,
    create_client,
    form_sealer,
    start_notifier,
)
from signoff.bot.slack.edge import SlackEdge, WsgiApp
from signoff.bot.slack.form_schemas import FormSchemas
from signoff.bot.slack.metrics import Metrics, observe_timer
from signoff.bot.slack.payloads import MAX_BODY_BYTES

logger = logging.getLogger(__name__)

#: how long stop() waits for the Socket Mode client's own threads once it has disconnected
SOCKET_MODE_CLOSE_SECONDS = 10.0

StartResponse = Callable[..., Any]

#: waitress's logger for requests that wait for a free HTTP thread
QUEUE_LOGGER = "waitress.queue"
#: at most one backlog line per this many seconds (see ``BacklogWarnings``)
BACKLOG_REPORT_SECONDS = 10.0


class BacklogWarnings(logging.Filter):
    """Folds waitress's "Task queue depth is N" warnings into one line per ``interval``.

    Waitress warns once for every request that arrives while its threads are busy, from the
    thread that reads every connection and under the lock its threads take work with: a
    burst of 500 submissions wrote 500 lines without an ``action``, and a slow log pipe
    would have held up the HTTP server. The first warning goes through, the rest are
    counted, and the next one after ``interval`` reports the deepest backlog since the
    previous line (action ``http_backlog``).
    """

    def __init__(
        self,
        interval: float = BACKLOG_REPORT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._deepest = 0
        self._reported_at: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], int)):
            return True  # not the warning this folds: leave it alone
        now = self.clock()
        with self._lock:
            self._deepest = max(self._deepest, args[0])
            if self._reported_at is not None and now - self._reported_at < self.interval:
                return False
            deepest, self._deepest, self._reported_at = self._deepest, 0, now
        record.msg = "HTTP requests waiting for a free thread: %d at most since the last report"
        record.args = (deepest,)
        record.action = "http_backlog"
        return True


def fold_backlog_warnings() -> BacklogWarnings:
    """Install ``BacklogWarnings`` on waitress's queue logger, once per process."""
    queue_logger = logging.getLogger(QUEUE_LOGGER)
    for existing in queue_logger.filters:
        if isinstance(existing, BacklogWarnings):
            return existing
    folding = BacklogWarnings()
    queue_logger.addFilter(folding)
    return folding


def _respond(
    start_response: StartResponse, status: str, body: bytes, content_type: str
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


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
    anything else 404."""
    metrics = metrics or Metrics(backend)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
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
        self.app = create_app(
            backend,
            settings,
            self.client,
            auth=check_slack(settings),
            forms=self.forms,
            # Over HTTP every request comes through SlackEdge (see start).
            behind_edge=not settings.socket_mode,
        )
        self.host, self.port = host, port
        #: the WSGI application the HTTP listener serves (set by ``start``)
        self.application: WsgiApp | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket_handler: Any = None
        self._notifier: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the backend (the embedded engine's worker), the notifier, Socket Mode (when configured) and the HTTP listener.

        The HTTP listener serves Slack's requests in HTTP mode; in Socket Mode it serves only
        ``/healthz``, ``/readyz`` and ``/metrics``.
        """
        # The notifier first: a first-ever subscription starts at the newest event.
        self._notifier = start_notifier(self.backend, self.settings, self.client)
        self.backend.on_timer_fired(observe_timer)
        self.backend.start()
        edge: SlackEdge | None = None
        if self.settings.app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self._socket_handler = SocketModeHandler(self.app, self.settings.app_token)
            self._socket_handler.connect()
            logger.info("connected in Socket Mode", extra={"action": "serve_socket_mode"})
        else:
            edge = SlackEdge(
                SlackRequestHandler(self.app),
                self.backend,
                self.settings.signing_secret or "",
                forms=self.forms.acknowledge,
            )
        from waitress.server import create_server

        fold_backlog_warnings()

        self.application = wsgi_app(
            self.answers.ahead_of_answers(edge) if self.answers and edge else edge,
            self.backend,
            ready=self.not_ready,
        )
        self._server = create_server(
            self.application,
            host=self.host,
            port=self.port,
            threads=HTTP_THREADS,
            max_request_body_size=MAX_BODY_BYTES,
        )
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="signoff-http", daemon=True)
        self._thread.start()
        logger.info("serving", extra={"action": "serve_http", "url": self.url})

    def not_ready(self) -> str | None:
        """Why this process cannot take Slack's traffic now (``/readyz``), or None."""
        if self._socket_handler is not None and not self._socket_handler.client.is_connected():
            return "the Socket Mode connection to Slack is down"
        return self.backend.not_ready()

    def stop(self) -> None:
        """Stop everything ``start`` started; a second call does nothing."""
        if self._server is not None:
            # Finish requests in flight before closing sockets under them.
            server, self._server = self._server, None
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

            # Close the sockets on waitress's own loop thread, which may be selecting on them.
            def close_all() -> None:
                for channel in list(server._map.values()):
                    channel.close()

            try:
                server.trigger.pull_trigger(close_all)
            except OSError:
                # The loop's wake-up pipe is gone (seen once in CI: EBADF): close from here.
                logger.warning(
                    "HTTP loop could not be woken; closing its sockets directly",
                    extra={"action": "serve_stop_trigger_lost"},
                )
                close_all()
            if self._thread is not None:
                self._thread.join(5)
        if self._socket_handler is not None:
            self._socket_handler, handler = None, self._socket_handler
            # slack_sdk disconnects first, then joins its own threads without a timeout; one
            # of those joins never returned in CI. Bound the wait, so that stopping ends.
            closer = threading.Thread(
                target=handler.close, name="signoff-socket-mode-close", daemon=True
            )
            closer.start()
            closer.join(SOCKET_MODE_CLOSE_SECONDS)
            if closer.is_alive():
                logger.warning(
                    "Socket Mode client still closing; stopping without it",
                    extra={"action": "serve_stop_socket_mode_stuck"},
                )
        answers, self.answers = self.answers, None
        if answers is not None:
            # No more submissions come in: finish the answers already acknowledged.
            answers.stop()
        if self._notifier is not None:
            self._notifier, notifier = None, self._notifier
            notifier.stop()
        self.backend.stop()
