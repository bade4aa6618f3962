"""``signoff serve``: the Slack app, a worker and the timers in one process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import HTTP_THREADS, check_slack, create_app, create_client, start_notifier
from bot.config import BotSettings
from bot.edge import SlackEdge
from bot.errors import BotError
from bot.payloads import MAX_BODY_BYTES
from engine import Engine, Worker

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


def wsgi_app(
    slack: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], engine: Engine
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """``POST /slack/events`` to ``slack`` (the edge in front of Bolt), ``GET /healthz``
    answered here, anything else 404."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            try:
                engine.list_runs(limit=1)
                body, status = b'{"ok": true}', "200 OK"
            except Exception:
                body, status = (
                    b'{"ok": false, "error": "database unavailable"}',
                    "503 Service Unavailable",
                )
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path == "/slack/events":
            result: Iterable[bytes] = slack(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

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
        """Start the worker, the notifier and the HTTP (or Socket Mode) listener in threads."""
        # The notifier first: a first-ever subscription starts at the newest event.
        self._notifier = start_notifier(self.engine, self.settings, self.client)
        self.worker.start()
        if self.settings.app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self._socket_handler = SocketModeHandler(self.app, self.settings.app_token)
            self._socket_handler.connect()
            logger.info("connected in Socket Mode", extra={"action": "serve_socket_mode"})
            return
        from waitress.server import create_server

        edge = SlackEdge(SlackRequestHandler(self.app), self.engine, self.settings.signing_secret)
        self._server = create_server(
            wsgi_app(edge, self.engine),
            host=self.host,
            port=self.port,
            threads=HTTP_THREADS,
            max_request_body_size=MAX_BODY_BYTES,
        )
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="signoff-http", daemon=True)
        self._thread.start()
        logger.info("serving", extra={"action": "serve_http", "url": self.url})

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


def serve_command() -> Any:
    """The ``signoff serve`` click command (built lazily so serve.py stays click-free to import)."""
    import click

    from bot.cli_session import CliSession, pass_session

    @click.command("serve")
    @click.option(
        "--flows",
        "sources",
        multiple=True,
        metavar="PATH_OR_MODULE",
        help="Flows to load (repeatable).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option(
        "--port",
        default=3000,
        show_default=True,
        envvar="SIGNOFF_PORT",
        type=click.IntRange(0, 65535),
        help="Port to listen on (0: any free port); also SIGNOFF_PORT.",
    )
    @pass_session
    def serve(session: CliSession, sources: tuple[str, ...], host: str, port: int) -> None:
        """Run the Slack app, a worker and the timers in one process.

        HTTP mode serves POST /slack/events and GET /healthz; with SLACK_APP_TOKEN set it
        connects in Socket Mode instead.
        """
        from bot.cli import configure_logging

        configure_logging(logging.INFO)
        try:
            settings = BotSettings.load()
            server = Server(session.engine(), settings, flows=sources, host=host, port=port)
        except BotError as exc:
            raise click.ClickException(str(exc)) from exc
        stop = threading.Event()
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        if server.settings.app_token is None:
            click.echo(f"Signoff is listening on {server.url}/slack/events", err=True)
        try:
            stop.wait()
        finally:
            server.stop()

    return serve
