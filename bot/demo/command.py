"""``signoff demo``: the whole loop on this machine, against the local Slack sandbox.

It serves the bot on a temporary SQLite store, starts the demo flows (or yours, with
``--flows``), plays a person's clicks and submissions, and prints what Slack would show.
This module is the command: its options, their checks, and which demo they play; the
plays are ``on_engine`` (the default) and ``on_prefect`` (``--backend prefect``), and
``--web`` serves the sandbox page (``page``) for a person to answer the runs themselves.
"""

from __future__ import annotations

import codecs
import io
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click

from signoff.bot.demo.on_engine import builtin_demo, user_demo
from signoff.bot.demo.plans import read_answers_file

F = TypeVar("F", bound=Callable[..., Any])


class FlowsOption(Protocol):
    """The CLI's ``--flows`` option (``signoff.bot.cli.session.flows_option``), given its help."""

    def __call__(self, help_text: str) -> Callable[[F], F]: ...


def _plan(entry: Any) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(parameters, answers) from an answers-file entry: a list of answers, or
    ``{"parameters": {...}, "answers": [...]}``; answers None means "ask at the prompt"."""
    if isinstance(entry, list):
        return {}, entry
    if isinstance(entry, dict):
        return dict(entry.get("parameters") or {}), entry.get("answers")
    return {}, None


#: What ``demo --web`` starts for the built-in flows: the reference's two examples and a deploy.
WEB_RUNS: list[tuple[str, dict[str, Any]]] = [
    ("greet-user", {}),
    ("get-shirt-order", {}),
    ("deploy-production", {"version": "2.4.1"}),
]


def web_demo(flows: list[str], plans: dict[str, Any], *, port: int = 8765) -> None:
    """Start one run of each flow and serve the sandbox page, for a person to answer.

    Args:
        flows: Flow files or modules; the built-in demo flows when empty.
        plans: The answers file's entries; only their ``parameters`` are used here.
        port: The page's port.
    """
    from signoff.bot.demo.page import serve_page

    if not flows:
        serve_page(["signoff.bot.demo.flows"], start=lambda _names: WEB_RUNS, port=port)
        return
    serve_page(flows, start=lambda n: [(f, _plan(plans.get(f))[0]) for f in n], port=port)


def _printable_stdout() -> None:
    """Let the transcript's marks (▶, ─, emoji in names) reach a stdout whose encoding lacks
    them (a non-UTF-8 locale, output redirected under one) as escapes: they ended the demo
    with "unexpected UnicodeEncodeError" after its first line. stderr does so already."""
    out = sys.stdout
    if (
        isinstance(out, io.TextIOWrapper)
        and out.errors == "strict"
        and codecs.lookup(out.encoding).name != "utf-8"
    ):
        out.reconfigure(errors="backslashreplace")


def demo_command(
    flows_option: FlowsOption,
    prefect_demo: Callable[[str | None], None] | None = None,
) -> click.Command:
    """The ``signoff demo`` command.

    Args:
        flows_option: The CLI's ``--flows`` option, given its help text (the CLI's, so that
            ``--flows`` is checked the same way in every command; the CLI sits above the demo).
        prefect_demo: ``prefect_demo(api_url)`` plays ``--backend prefect``.
    """

    @click.command("demo")
    @flows_option("Your flows instead of the built-in ones.")
    @click.option(
        "--answers",
        type=click.Path(exists=True, dir_okay=False),
        help='JSON: {"flow-name": [answer, ...]} or {"flow-name": {"parameters": {...}, '
        '"answers": [...], "as": "bob"}}; an answer may be {"as": "bob", "input": {...}}. '
        "Flows without answers are asked at the prompt.",
    )
    @click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="A parameter for every one of your flows that takes NAME (repeatable; over the "
        "answers file's; JSON values such as 3 or true are read as such, except by a "
        "parameter that takes text).",
    )
    @click.option(
        "--web",
        is_flag=True,
        help="Start the flows and show the sandbox in your browser, to answer them yourself.",
    )
    @click.option(
        "--port",
        default=8765,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="With --web: the page's port (0: any free port).",
    )
    @click.option(
        "--backend",
        type=click.Choice(["embedded", "prefect"]),
        default="embedded",
        show_default=True,
        help="Run the reference flows on Signoff's engine, or on a throwaway Prefect server.",
    )
    @click.option(
        "--prefect-url",
        metavar="URL",
        help="With --backend prefect: the API of a Prefect server to serve them on instead "
        "of a throwaway one (e.g. http://127.0.0.1:4200/api).",
    )
    def demo(
        sources: tuple[str, ...],
        answers: str | None,
        params: tuple[str, ...],
        web: bool,
        port: int,
        backend: str,
        prefect_url: str | None,
    ) -> None:
        """See the whole loop locally: flows, Slack prompts, modals, errors, and answers.

        Exits 1 when a run failed, ran out of answers, or asked for input Slack cannot show.
        """
        _printable_stdout()
        if prefect_url and backend != "prefect":
            raise click.UsageError("--prefect-url goes with --backend prefect")
        if backend == "prefect":
            if sources or web or answers or params:
                raise click.UsageError("--backend prefect plays the reference flows only")
            if prefect_demo is None:
                raise click.ClickException("this signoff has no Prefect demo")
            started = time.monotonic()
            prefect_demo(prefect_url)
            click.secho(
                f"✔ demo finished in {time.monotonic() - started:.1f}s", fg="green", err=True
            )
            return
        texts: dict[str, str] = {}
        for item in params:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(
                    f"expected NAME=VALUE, got {item!r}", param_hint="'--param'"
                )
            texts[key.strip()] = value
        if params and not sources:
            raise click.UsageError("--param sets parameters of your flows: give --flows too")
        if answers and not sources:
            # The built-in demo answers itself: the file would be ignored, unread.
            raise click.UsageError("--answers answers your flows: give --flows too")
        if web:
            plans = read_answers_file(answers) if answers else {}
            if not isinstance(plans, dict):
                raise click.ClickException(
                    f'{answers}: expected a JSON object of flow names, like {{"my-flow": [...]}}'
                )
            web_demo(list(sources), plans, port=port)
            return
        started = time.monotonic()
        problems = user_demo(list(sources), answers, texts) if sources else builtin_demo()
        took = f"{time.monotonic() - started:.1f}s"
        if problems:
            for problem in problems:
                click.secho(f"✘ {problem}", fg="red", err=True)
            raise click.ClickException(f"the demo finished in {took}, but not every run completed")
        click.secho(f"✔ demo finished in {took}", fg="green", err=True)
        if not sources:
            click.echo(
                "next: 'signoff demo --web' to click through it yourself in a browser; "
                "'Your first approval' in the README to write a flow of your own",
                err=True,
            )

    return demo
