"""``signoff worker``: take queued runs until SIGTERM or Ctrl-C, riding out a database that
cannot be reached yet, with ``GET /healthz``, ``/readyz`` and ``/metrics`` if asked.

Example::

    signoff worker --flows flows/deploy.py --concurrency 50 --health-port 8081
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import click

from signoff.bot.cli.heap import settle_after_start
from signoff.bot.cli.logs import configure_logging
from signoff.bot.cli.session import CliSession, flows_option, migrate_option, pass_session
from signoff.bot.errors import BotError
from signoff.bot.stopping import stop_signals, wait_until

if TYPE_CHECKING:
    from signoff.bot.slack.listener import HttpListener
    from signoff.engine import Engine, Worker

__all__ = ["worker"]

logger = logging.getLogger(__name__)


@click.command("worker")
@flows_option("A flows file or module to load before taking runs (repeatable).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=10_000),
    default=200,
    show_default=True,
    help="At most N runs at once.",
)
@migrate_option()
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    help="Serve GET /healthz, /readyz and /metrics on this port (as serve does). [default: none]",
)
@click.option(
    "--health-host",
    metavar="ADDRESS",
    help="Address for --health-port. [env: SIGNOFF_HOST; 127.0.0.1]",
)
@pass_session
def worker(
    session: CliSession,
    sources: tuple[str, ...],
    concurrency: int,
    health_port: int | None,
    health_host: str | None,
) -> None:
    """Execute queued runs until SIGTERM or Ctrl-C."""
    from signoff.bot.slack.listener import http_url
    from signoff.engine import Worker, load_flows, registered_flows

    if sources:
        # Before the database opens. A worker kept to no flow would take no run, ever,
        # while its log said it had started.
        load_flows(*sources)
        if not registered_flows():
            raise click.ClickException(
                f"no flows in {', '.join(sources)}: a flow is a function decorated with "
                "@flow (from signoff import flow); this worker would take no run"
            )
    session.create = True
    configure_logging(logging.INFO)
    if health_host is not None and health_port is None:
        raise click.UsageError("--health-host needs --health-port")

    def on_signal(signum: signal.Signals) -> None:
        logger.info("stopping on %s", signum.name, extra={"action": "worker_stopping"})

    def started() -> tuple[Worker, HttpListener | None]:
        engine = session.engine()
        running = Worker(engine, flows=sources, concurrency=concurrency)
        listener = None
        if health_port is not None:
            listener = _health(engine, running, health_host, health_port)
        try:
            running.start()
            if listener is not None:
                listener.start()
                url = http_url(listener.host, listener.port)
                logger.info("serving health", extra={"action": "worker_health", "url": url})
        except BaseException:
            running.stop()
            if listener is not None:
                listener.stop()
            raise
        return running, listener

    with stop_signals(on_signal) as stop:
        begun = session.when_reachable(started, stop)
        if begun is None:
            return
        running, listener = begun
        settle_after_start()
        try:
            wait_until(stop)
        finally:
            if listener is not None:
                listener.stop()
            running.stop()
            # Closing suspends the runs still waiting here, which it logs: before "stopped".
            session.close()
            logger.info("worker stopped", extra={"action": "worker_stopped"})


def _health(engine: Engine, running: Worker, host: str | None, port: int) -> HttpListener:
    """The worker's health listener, its port taken before the worker takes runs."""
    from signoff.bot.cli.health import health_listener
    from signoff.bot.config import ServerSettings
    from signoff.bot.slack.listener import listen_failure

    try:
        address = host or ServerSettings.load().host
    except BotError as exc:
        raise click.ClickException(str(exc)) from exc
    listener = health_listener(
        engine,
        lambda: None if running.running else "the worker is not running",
        host=address,
        port=port,
    )
    try:
        listener.bind()
    except OSError as exc:
        raise click.ClickException(listen_failure(address, port, exc)) from exc
    return listener
