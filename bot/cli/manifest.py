"""``signoff manifest``: print the Slack app manifest built by ``bot.slack.manifest``."""

from __future__ import annotations

from urllib.parse import urlsplit

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
    ctx = click.get_current_context()
    if socket_mode and ctx.get_parameter_source("url") is click.core.ParameterSource.COMMANDLINE:
        # A Socket Mode app has no request URLs: the URL given would be dropped unseen.
        raise click.UsageError("--url is for HTTP mode; a --socket-mode manifest has no URLs")
    problem = _url_problem(url)
    if problem:
        raise click.BadParameter(
            f"expected an http(s) URL, got {url!r}: {problem}", param_hint="--url"
        )
    click.echo(render(socket_mode=socket_mode, url=url), nl=False)


def _url_problem(url: str) -> str:
    """What keeps ``url`` from being the base of Slack's request URLs (``url/slack/events``),
    or "" when nothing does."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - read for the ValueError of a port that is not a number
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it must start with https:// (or http://)"
    if not parts.hostname:
        return "it names no host"
    if any(c.isspace() for c in url):
        return "it holds a space"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "/slack/events is added to it, so it takes no ?query or #fragment"
    if parts.path.rstrip("/").endswith("/slack/events"):
        # The request URL itself, pasted from Slack's settings: it would become
        # .../slack/events/slack/events, where serve answers nothing.
        base = url.rstrip("/").removesuffix("/slack/events")
        return f"/slack/events is added to it; give the base URL, {base}"
    return ""
