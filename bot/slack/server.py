"""``signoff serve``: the Slack app, a worker and the timers in one process."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.config import BotSettings
from bot.slack.app import HTTP_THREADS, check_slack, create_app, create_client, start_notifier
from bot.slack.edge import SlackEdge
from bot.slack.metrics import Metrics, observe_timer
from bot.slack.payloads import MAX_BODY_BYTES
from engine import Engine, Worker

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


def _respond(
    start_response: StartResponse, status: str, body: bytes, content_type: str
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def wsgi_app(
    slack: Callable[[dict[str, Any], StartResponse], Iterable[bytes]] | None,
    engine: Engine,
    *,
    ready: Callable[[], str | None] = lambda: None,
    metrics: Metrics | None = None,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """``POST /slack/events`` to ``slack`` (the edge in front of Bolt; HTTP mode only), and
    in both modes ``GET /healthz`` (the database answers), ``GET /readyz`` (and the process
    is ready: ``ready()`` returns None, or why not) and ``GET /metrics`` (Prometheus);
    anything else 404."""
    metrics = metrics or Metrics(engine)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            try:
                engine.list_runs(limit=1)
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
        engine: Engine,
        settings: BotSettings,
        *,
        flows: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = Worker(engine, flows=flows)
        self.client = create_client(settings)
        self.app = create_app(engine, settings, self.client, auth=check_slack(settings))
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket_handler: Any = None
        self._notifier: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the worker, the notifier, Socket Mode (when configured) and the HTTP listener.

        The HTTP listener serves Slack's requests in HTTP mode; in Socket Mode it serves only
        ``/healthz``, ``/readyz`` and ``/metrics``.
        """
        # The notifier first: a first-ever subscription starts at the newest event.
        self._notifier = start_notifier(self.engine, self.settings, self.client)
        self.engine.timers.on_fired(observe_timer)
        self.worker.start()
        edge: SlackEdge | None = None
        if self.settings.app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self._socket_handler = SocketModeHandler(self.app, self.settings.app_token)
            self._socket_handler.connect()
            logger.info("connected in Socket Mode", extra={"action": "serve_socket_mode"})
        else:
            edge = SlackEdge(
                SlackRequestHandler(self.app), self.engine, self.settings.signing_secret or ""
            )
        from waitress.server import create_server

        self._server = create_server(
            wsgi_app(edge, self.engine, ready=self.not_ready),
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
        if not self.worker.running:
            return "the worker is not running"
        return None

    def stop(self) -> None:
        if self._server is not None:
            # Finish requests in flight before closing sockets under them.
            server = self._server
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            # Close the sockets on waitress's own loop thread, which may be selecting on them.
            server.trigger.pull_trigger(lambda: [c.close() for c in list(server._map.values())])
            if self._thread is not None:
                self._thread.join(5)
        if self._socket_handler is not None:
            self._socket_handler.close()
        if self._notifier is not None:
            self._notifier.stop()
        self.worker.stop()
