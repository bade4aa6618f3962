"""The bot on a local Slack sandbox, with the sandbox's page, served until SIGINT/SIGTERM.

``signoff sandbox`` and ``signoff demo --web`` both serve it. The page is served on
``127.0.0.1`` only, unless ``host`` says otherwise; it lets anyone who reaches it act as any
sandbox user, so it is for local development. Its workspace has the README's ids: alice,
bob and carol, and the user group ``S0SRE`` (carol).
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from signoff.bot.sandbox.web import LOOPBACK, SandboxPage
from signoff.bot.slack.listener import listen_failure
from signoff.bot.stopping import stop_signals, stop_step, wait_until
from signoff.bot.testing import running_bot
from signoff.engine import InvalidParameters

__all__ = ["SRE_GROUP", "STARTER", "serve_page"]

#: Who starts the runs given with ``--start`` (a member other than the default viewer, so
#: flows that forbid the starter from answering still let alice answer).
STARTER = "U0CAROL"
#: the user group the README's examples name as approvers
SRE_GROUP = "S0SRE"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_page(
    flows: Sequence[str],
    *,
    host: str = LOOPBACK,
    port: int = 8765,
    start: Callable[[list[str]], Sequence[tuple[str, Mapping[str, Any]]]] | None = None,
    database_url: str | None = None,
    notice: str | None = None,
) -> None:
    """Serve the bot on a sandbox and the sandbox's page until SIGINT or SIGTERM.

    Args:
        flows: Flow files or modules to load.
        host: Address the page binds (loopback by default).
        port: The page's port (0: any free one).
        start: Given the loaded flows' names, the (flow name, parameters) of runs to start
            once everything is up.
        database_url: The engine's store; a temporary SQLite file when None.
        notice: Said on stderr once the page is up.
    """
    with stop_signals() as stop, running_bot(flows, database_url=database_url) as bot:
        names = bot.engine.flows.names()
        try:
            page = SandboxPage(bot.slack.workspace, bot.driver, host=host, port=port, flows=names)
            page.start()
        except OSError as exc:
            said = listen_failure(host, port, exc)
            if exc.errno == errno.EADDRINUSE:
                # Most often the page of a demo or sandbox started before, still running.
                said += (
                    " (another 'signoff demo --web' or 'signoff sandbox' may be serving it;"
                    " stop it, or give another port with --port, 0 for any free one)"
                )
            raise click.ClickException(said) from exc
        # The README's examples name these ids: bob, and the SRE group (carol).
        bot.slack.add_usergroup(SRE_GROUP, "sre", ["U0CAROL"])
        try:
            starts = list(start(names)) if start else []
            for name, parameters in starts:  # all checked before any starts
                definition = bot.engine.flows.get(name)
                if definition is None:
                    continue  # submit names it, with the flows there are
                try:
                    definition.validate_parameters(dict(parameters))
                except InvalidParameters as exc:
                    raise click.ClickException(
                        f"--start {name}: {exc}. Start it in the page with /runs start "
                        f"{name}, which asks for its parameters"
                    ) from None
            for name, parameters in starts:
                bot.engine.submit(name, dict(parameters), started_by=STARTER)
            click.echo(f"Sandbox page: {page.url}")
            click.echo(
                f"Serving {page.host}:{page.port} for local development; Ctrl-C stops it.",
                err=True,
            )
            if notice:
                click.echo(notice, err=True)
            if not _is_loopback(page.host):
                click.secho(
                    f"warning: {page.host} is not loopback: anyone who reaches it can act "
                    "as any sandbox user",
                    fg="yellow",
                    err=True,
                )
            if names:
                click.echo(f"Flows: {', '.join(names)} (start one with /runs start NAME)")
            wait_until(stop)
        finally:
            with stop_step("sandbox page"):
                page.stop()
