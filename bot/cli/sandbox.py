"""``signoff sandbox``: the bot against the local Slack sandbox, shown as a page in a browser.

    signoff sandbox --flows flows/deploy.py        # then open the printed URL
    signoff demo --web                             # the demo's flows, started, to click through

The page is served on ``127.0.0.1`` only, unless ``--host`` says otherwise; it lets anyone who
reaches it act as any sandbox user, so it is for local development.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from signoff.bot.cli.session import flows_option
from signoff.bot.demo.page import serve_page
from signoff.bot.sandbox.web import LOOPBACK

__all__ = ["sandbox_command"]


def sandbox_command() -> click.Command:
    """The ``signoff sandbox`` click command."""

    @click.command("sandbox")
    @flows_option()
    @click.option(
        "--start",
        "starts",
        multiple=True,
        metavar="FLOW",
        help="Start a run of FLOW once the page is up (repeatable).",
    )
    @click.option("--host", default=LOOPBACK, show_default=True, help="Address the page binds.")
    @click.option(
        "--port",
        default=8765,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="The page's port (0: any free port).",
    )
    @click.pass_context
    def sandbox(
        ctx: click.Context, sources: tuple[str, ...], starts: tuple[str, ...], host: str, port: int
    ) -> None:
        """Run the bot against a local Slack sandbox and show it in your browser.

        Prints the page's URL. Click the buttons, fill in and submit the modals as any sandbox
        user; start runs with /runs start FLOW in the page. Stored in a temporary SQLite file
        unless --database-url is given (SIGNOFF_DATABASE_URL is not used).
        """
        root = ctx.find_root()
        # Only a URL given here: SIGNOFF_DATABASE_URL names the team's database (.env or the
        # shell), and a sandbox joined to it would consume its Slack outbox and leave its
        # sandbox users' runs there.
        named = root.get_parameter_source("database_url") is ParameterSource.COMMANDLINE
        database_url = getattr(root.obj, "database_url", None) if named else None
        notice = (
            "note: the sandbox keeps its runs in a temporary database, not in "
            "SIGNOFF_DATABASE_URL's; give --database-url to use that one"
            if not named and root.params.get("database_url")
            else None
        )
        serve_page(
            list(sources),
            host=host,
            port=port,
            start=lambda _names: [(name, {}) for name in starts],
            database_url=database_url,
            notice=notice,
        )

    return sandbox
