"""``signoff serve``: the Slack app, a worker and the timers in one process."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click

from signoff.bot.cli.backend import backend_option, open_backend
from signoff.bot.cli.heap import settle_after_start
from signoff.bot.cli.logs import configure_logging, tell_operator
from signoff.bot.cli.session import (
    CliSession,
    database_unreachable,
    flows_option,
    migrate_option,
    pass_session,
)
from signoff.bot.config import BotSettings, ServerSettings
from signoff.bot.errors import BotError
from signoff.bot.slack.listener import listen_failure
from signoff.bot.slack.server import Server
from signoff.bot.stopping import stop_signals, wait_until

__all__ = ["serve_command"]

logger = logging.getLogger(__name__)


def serve_command() -> Any:
    """The ``signoff serve`` click command."""

    @click.command("serve")
    @flows_option("Flows to load (repeatable).")
    @click.option(
        "--host", metavar="ADDRESS", help="Address to listen on. [env: SIGNOFF_HOST; 127.0.0.1]"
    )
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        help="Port to listen on. [env: SIGNOFF_PORT or PORT; 3000]",
    )
    @migrate_option()
    @backend_option("Where flows run: Signoff's engine, or the Prefect server at PREFECT_API_URL.")
    @pass_session
    def serve(
        session: CliSession,
        sources: tuple[str, ...],
        host: str | None,
        port: int | None,
        backend_name: str,
    ) -> None:
        """Run the Slack app, a worker and the timers in one process (or, with --backend
        prefect, the Slack app over the paused runs of a Prefect server).

        HTTP mode serves POST /slack/events; with SLACK_APP_TOKEN set it connects in
        Socket Mode instead. Both serve GET /healthz, /readyz and /metrics.
        """
        configure_logging(logging.INFO)
        try:
            settings = BotSettings.load()
            listen = ServerSettings.load()
        except BotError as exc:
            said = str(exc)
            if "is not set" in said:
                # A newcomer's first serve: say where the values go and come from.
                said += (
                    " (set them in the environment or in a .env file here; 'Connecting to"
                    " Slack' in the README says where each comes from, and 'signoff demo'"
                    " needs none of them)"
                )
            raise click.ClickException(said) from exc
        session.create = True

        def started() -> Server:
            try:
                server = Server(
                    open_backend(session, backend_name, sources),
                    settings,
                    host=host or listen.host,
                    port=listen.port if port is None else port,
                )
            except BotError as exc:
                if database_unreachable(exc):
                    raise
                raise click.ClickException(str(exc)) from exc
            try:
                server.start()
            except BotError as exc:  # a token Slack refuses (SLACK_APP_TOKEN)
                server.stop()
                raise click.ClickException(str(exc)) from exc
            except OSError as exc:
                server.stop()  # what started before the listener failed
                raise click.ClickException(listen_failure(server.host, server.port, exc)) from exc
            except BaseException:
                server.stop()
                raise
            return server

        def on_signal(signum: signal.Signals) -> None:
            logger.info("stopping on %s", signum.name, extra={"action": "serve_stopping"})

        with stop_signals(on_signal) as stop:
            begun = session.when_reachable(started, stop)
            if begun is None:
                return
            server = begun
            settle_after_start()
            if server.settings.app_token is None:
                said = f"Signoff is listening on {server.url}/slack/events"
            elif server.socket_mode_connected:
                said = f"Signoff is connected in Socket Mode; health on {server.url}/healthz"
            else:
                said = (
                    "Signoff is not connected to Slack in Socket Mode yet and keeps trying "
                    f"(/readyz answers 503 until it is); health on {server.url}/healthz"
                )
            tell_operator(said, action="serve_ready", level=logging.INFO)
            try:
                # Or until Slack refuses SLACK_APP_TOKEN while serving (revoked): as at start,
                # that is an operator's to mend, so serve stops and exits 1.
                wait_until(stop, server.failed)
            finally:
                server.stop()
                # Closing suspends the runs still waiting here, which it logs: before
                # "stopped", as the worker does.
                session.close()
                logger.info("serve stopped", extra={"action": "serve_stopped"})
            if server.failure is not None:
                raise click.ClickException(str(server.failure))

    return serve
