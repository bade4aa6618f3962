"""``signoff manifest``: print the Slack app manifest built by ``bot.slack.manifest``."""

from __future__ import annotations

import click

from signoff.bot.slack.manifest import EXAMPLE_URL, render

__all__ = ["manifest_command"]


@click.command("manifest")
@click.option("--socket-mode", is_flag=True, help="For Socket Mode: no request URLs.")
@click.option(
    "--url",
    default=EXAMPLE_URL,
    show_default=True,
    metavar="URL",
    help="Public base URL of signoff serve (HTTP mode).",
)
def manifest_command(socket_mode: bool, url: str) -> None:
    """Print the Slack app manifest: the code's commands and only the scopes it needs."""
    if not url.startswith(("https://", "http://")):
        raise click.BadParameter(f"expected an http(s) URL, got {url!r}", param_hint="--url")
    click.echo(render(socket_mode=socket_mode, url=url), nl=False)
