"""``signoff serve``: the Slack app, a worker and the timers in one process."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from bot.backends.embedded import EmbeddedBackend
from bot.cli.logs import configure_logging
from bot.cli.session import CliSession, pass_session
from bot.config import BotSettings, ServerSettings
from bot.errors import BotError
from bot.slack.server import Server

__all__ = ["serve_command"]


def serve_command() -> Any:
    """The ``signoff serve`` click command."""

    @click.command("serve")
    @click.option(
        "--flows",
        "sources",
        multiple=True,
        metavar="PATH_OR_MODULE",
        help="Flows to load (repeatable).",
    )
    @click.option(
        "--host", metavar="ADDRESS", help="Address to listen on. [env: SIGNOFF_HOST; 127.0.0.1]"
    )
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        help="Port to listen on. [env: SIGNOFF_PORT or PORT; 3000]",
    )
    @click.option(
        "--migrate",
        is_flag=True,
        help="Upgrade an outdated database schema instead of refusing it.",
    )
    @pass_session
    def serve(
        session: CliSession,
        sources: tuple[str, ...],
        host: str | None,
        port: int | None,
        migrate: bool,
    ) -> None:
        """Run the Slack app, a worker and the timers in one process.

        HTTP mode serves POST /slack/events; with SLACK_APP_TOKEN set it connects in
        Socket Mode instead. Both serve GET /healthz, /readyz and /metrics.
        """
        configure_logging(logging.INFO)
        try:
            settings = BotSettings.load()
            listen = ServerSettings.load()
            session.migrate = migrate
            server = Server(
                EmbeddedBackend(session.engine(), flows=sources),
                settings,
                host=host or listen.host,
                port=listen.port if port is None else port,
            )
        except BotError as exc:
            raise click.ClickException(str(exc)) from exc
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        if server.settings.app_token is None:
            click.echo(f"Signoff is listening on {server.url}/slack/events", err=True)
        else:
            click.echo(
                f"Signoff is connected in Socket Mode; health on {server.url}/healthz", err=True
            )
        try:
            stop.wait()
        finally:
            server.stop()

    return serve
