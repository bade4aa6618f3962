"""``signoff``: start flows, run a worker, and look after runs from a terminal.

Every command is thin: parse the command line, open the engine from ``SIGNOFF_*``
settings (``--database-url`` overrides the database), call the engine's public API,
print. An ``EngineError`` or a usage error prints one ``error: ...`` line to stderr and
exits non-zero; ``-v`` adds the traceback. With ``--json`` stdout carries JSON only.

Example::

    signoff run deploy --flows flows/deploy.py --param version=1.2 --wait
    signoff worker --flows flows/deploy.py
    signoff runs wait 3f2a9c0e --until paused
    signoff runs resume 3f2a9c0e --input '{"approved": true}' --as alice --group S0SRE
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from signoff.bot.cli.audit import audit
from signoff.bot.cli.db import db
from signoff.bot.cli.flows import flows
from signoff.bot.cli.logs import configure_logging, tell_operator
from signoff.bot.cli.render import dump_json
from signoff.bot.cli.runs import runs
from signoff.bot.cli.session import (
    CliSession,
    check_person,
    flows_option,
    name_database_source,
    pass_session,
)
from signoff.bot.cli.wait import Until, report_wait, say_no_worker, timeout_option, wait_for_run
from signoff.bot.cli.worker import worker
from signoff.bot.errors import BotError, EnvFileUnreadable, JsonTooDeep, SettingsError
from signoff.bot.forms.parameters import parameter_value
from signoff.bot.stopping import Terminated, unwind_on_sigterm
from signoff.engine import EngineError, FlowNotFound, InvalidParameters, find_flow, load_flows

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def _serve() -> click.Command:
    from signoff.bot.cli.serve import serve_command

    return serve_command()  # type: ignore[no-any-return]


def _demo() -> click.Command:
    from signoff.bot.demo.command import demo_command
    from signoff.bot.demo.on_prefect import prefect_demo

    return demo_command(flows_option, prefect_demo)


def _sandbox() -> click.Command:
    from signoff.bot.cli.sandbox import sandbox_command

    return sandbox_command()


def _manifest() -> click.Command:
    from signoff.bot.cli.manifest import manifest_command

    return manifest_command


def _config() -> click.Command:
    from signoff.bot.cli.config import config

    return config


@dataclass(frozen=True)
class LazyCommand:
    """A command imported only when it is named."""

    load: Callable[[], click.Command]
    #: the first paragraph of its help, which ``signoff --help`` lists it by without
    #: importing it (tests/cli/test_startup.py checks that it is the command's own)
    summary: str


#: Commands that bring in the Slack app, the demo, the sandbox page or the settings
#: classes (pydantic-settings), loaded when named: ``signoff --help``, ``signoff runs
#: list`` and the rest start without them.
LAZY_COMMANDS: dict[str, LazyCommand] = {
    "config": LazyCommand(_config, "Show the settings in effect."),
    "demo": LazyCommand(
        _demo, "See the whole loop locally: flows, Slack prompts, modals, errors, and answers."
    ),
    "manifest": LazyCommand(
        _manifest, "Print the Slack app manifest: the code's commands and only the scopes it needs."
    ),
    "sandbox": LazyCommand(
        _sandbox, "Run the bot against a local Slack sandbox and show it in your browser."
    ),
    "serve": LazyCommand(
        _serve,
        "Run the Slack app, a worker and the timers in one process (or, with --backend "
        "prefect, the Slack app over the paused runs of a Prefect server).",
    ),
}


#: the options that show a command's help
HELP_OPTIONS = frozenset({"-h", "--help"})
#: ``ctx.meta`` key: the command line asks for a command's help
ASKS_FOR_HELP = "signoff.asks_for_help"


class SignoffGroup(click.Group):
    """The root command group: engine errors become one line (and a traceback with ``-v``);
    the commands in ``LAZY_COMMANDS`` are imported only when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included, sorted as click shows them."""
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, importing it first if it is a lazy one."""
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            self.add_command(LAZY_COMMANDS[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as click does, each lazy one not imported yet by its summary."""
        stand_ins = {
            name: click.Command(name, help=lazy.summary) for name, lazy in LAZY_COMMANDS.items()
        }
        click.Group(commands={**stand_ins, **self.commands}).format_commands(ctx, formatter)

    def invoke(self, ctx: click.Context) -> object:
        """Run the chosen command, turning every other exception into a ``ClickException``."""
        # Read before click hands them to the command (the root's callback sees none).
        ctx.meta[ASKS_FOR_HELP] = bool(HELP_OPTIONS.intersection(ctx.args))
        try:
            return super().invoke(ctx)
        # A reader of stdout that went away (``signoff runs list | head``) is click's to
        # handle: it ends the command quietly, with status 1.
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except (EngineError, BotError) as exc:
            # Both trees hold errors that say in one line what is wrong (a setting, a flow
            # file that cannot be loaded, a run that is not there).
            if ctx.params.get("verbose"):
                traceback.print_exc()
            raise click.ClickException(name_database_source(str(exc), ctx)) from exc
        except Exception as exc:
            if isinstance(exc, OSError) and _stdout_unwritable(exc):
                # A full disk under `audit export > trail.jsonl`: the output is cut short.
                raise click.ClickException(
                    f"cannot write to standard output: {exc.strerror or exc}"
                ) from exc
            if ctx.params.get("verbose"):
                traceback.print_exc()
                raise click.ClickException(f"unexpected {type(exc).__name__}: {exc}") from exc
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)"
            ) from exc


#: what a write to a full disk or quota fails with
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _stdout_unwritable(exc: OSError) -> bool:
    """True when ``exc`` is a write to standard output that the disk refused (``audit
    export > trail.jsonl`` on a full disk): the only file a command writes without naming
    it (the database's files fail as database errors). Standard output is then pointed at
    the null device, so that Python's own flush at exit does not fail again and print a
    second error."""
    if exc.errno not in _FULL or exc.filename is not None:
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # no standard output to point elsewhere
    finally:
        os.close(null)
    return True


@click.group(cls=SignoffGroup, context_settings={"help_option_names": sorted(HELP_OPTIONS)})
@click.version_option(package_name="signoff", prog_name="signoff", message="%(prog)s %(version)s")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log INFO records too (warnings always go to stderr) and show errors' tracebacks.",
)
@click.option(
    "--database-url",
    envvar="SIGNOFF_DATABASE_URL",
    metavar="URL",
    help="sqlite:///path.db or postgresql://... [env: SIGNOFF_DATABASE_URL]",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, database_url: str | None) -> None:
    """Human-in-the-loop approvals for Python flows."""
    given = ctx.get_parameter_source("database_url") is click.core.ParameterSource.COMMANDLINE
    if database_url is not None and not database_url.strip():
        if given:
            # Not the default database: an empty value is a mistake (an unset shell variable).
            raise click.BadParameter(
                "is empty; give a database URL or leave it out",
                ctx=ctx,
                param_hint="'--database-url'",
            )
        # From the environment: the settings name SIGNOFF_DATABASE_URL as they check it
        # (and 'config show' lists it among the problems), as for an empty value.
        database_url = None
    ctx.obj = CliSession(verbose=verbose, database_url=database_url)
    from signoff.bot.config import LogSettings, check_env_file

    # Every command logs alike: warnings (a database outage's "LISTEN connection lost") go
    # to stderr in the configured format, and a malformed log setting stops the command.
    level = logging.INFO if verbose else logging.WARNING
    ignored: list[str] = []
    try:
        ignored = check_env_file()  # a .env that is not text stops every command but help
        configure_logging(level)
    except SettingsError as exc:
        # 'config show' lists a malformed setting among the problems (but cannot read a
        # .env that is not text); help is shown whatever the settings.
        shown_by_config = ctx.invoked_subcommand == "config"
        if not ctx.meta.get(ASKS_FOR_HELP) and (
            isinstance(exc, EnvFileUnreadable) or not shown_by_config
        ):
            raise
        configure_logging(level, LogSettings.model_construct())
    for line in ignored:
        logger.warning(line, extra={"action": "env_line_ignored"})
    if ctx.invoked_subcommand != "config" and not ctx.meta.get(ASKS_FOR_HELP):
        # A typo in a variable's name leaves its setting at the default without a word
        # ('config show' lists it among the problems instead).
        from signoff.bot.cli.config import warn_of_unknown_names

        warn_of_unknown_names()


def parse_params(
    _ctx: click.Context, _param: click.Parameter, items: tuple[str, ...]
) -> dict[str, str]:
    """Split each ``--param KEY=VALUE``; the values stay text until the flow is known.

    Raises:
        click.BadParameter: an item has no ``=`` or no key, or a key comes twice.
    """
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        if key.strip() in parsed:
            # Which one was meant? Taking the last would run with a value nobody checked.
            raise click.BadParameter(f"{key.strip()!r} is given twice")
        parsed[key.strip()] = value
    return parsed


@cli.command("run")
@click.argument("flow_name", metavar="FLOW")
@flows_option()
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_params,
    help="A flow parameter; the value is read as JSON when it parses, unless the "
    "parameter takes text (repeatable).",
)
@click.option(
    "--started-by",
    metavar="NAME",
    callback=check_person,
    help="Who starts the run (default: SIGNOFF_OPERATOR, or your login name).",
)
@click.option(
    "--wait", is_flag=True, help="Wait until the run finishes; exit 1 if it did not complete."
)
@click.option(
    "--until",
    type=click.Choice(["paused", "finished"]),
    help="With --wait (implied): stop waiting when the run pauses for input (or a flow it "
    "called does: that run is printed), or finishes.",
)
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON only.")
@pass_session
def run(
    session: CliSession,
    flow_name: str,
    sources: tuple[str, ...],
    params: dict[str, str],
    started_by: str | None,
    wait: bool,
    until: Until | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Queue a run of FLOW for a worker and print its id.

    With --wait, wait for the run and print the state it stopped in. If no worker takes the
    run within a few seconds, say so on stderr (and keep waiting). --timeout (implies
    --wait) gives up after so many seconds, with exit status 124.
    """
    load_flows(*sources)
    try:
        # Before the database is opened: a mistyped name must not leave a database behind.
        flow = find_flow(flow_name)
    except FlowNotFound as exc:
        if sources:
            raise
        raise FlowNotFound(flow_name, f"{exc}; load it with --flows PATH_OR_MODULE") from exc
    session.create = True
    engine = session.engine()
    schema = flow.parameters_schema()
    values: dict[str, Any] = {}
    for name, text in params.items():
        try:
            values[name] = parameter_value(schema, name, text)
        except JsonTooDeep as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="'--param'") from exc
    try:
        queued = engine.submit(flow.name, values, started_by=engine.operator(started_by))
    except InvalidParameters as exc:
        missing = [name for name, why in exc.errors.items() if name and name not in values]
        if not missing:
            raise
        # "Field required" alone does not say how a parameter is given here.
        hint = " ".join(f"--param {name}=VALUE" for name in missing)
        raise click.UsageError(f"{exc}; give {hint}") from exc
    if not wait and until is None and timeout is None:
        click.echo(dump_json(queued) if as_json else queued.id)
        return
    if not as_json:
        click.echo(queued.id)
    final = wait_for_run(
        engine, queued.id, until or "finished", on_no_worker=say_no_worker, timeout=timeout
    )
    report_wait(final, until or "finished", as_json=as_json, timeout=timeout)


cli.add_command(runs)
cli.add_command(worker)
cli.add_command(flows)
cli.add_command(db)
cli.add_command(audit)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _misplaced(exc: click.UsageError) -> str | None:
    """For an option of ``signoff`` itself given after a command (``signoff runs list
    --database-url URL``, as many tools allow): where it goes instead."""
    ctx = exc.ctx
    if not isinstance(exc, click.NoSuchOption) or ctx is None or ctx.parent is None:
        return None
    root = ctx.find_root()
    for param in root.command.params:
        if isinstance(param, click.Option) and exc.option_name in param.opts + param.secondary_opts:
            if param.is_eager:  # --version: not a setting for the command
                return (
                    f"{exc.option_name} is an option of signoff itself: signoff {exc.option_name}"
                )
            value = "" if param.is_flag else f" {param.metavar or 'VALUE'}"
            rest = ctx.command_path.removeprefix(root.command_path).strip()
            return (
                f"{exc.option_name} is an option of signoff itself and goes before the command: "
                f"signoff {exc.option_name}{value} {rest} ..."
            )
    return None


def main(args: Sequence[str] | None = None) -> int:
    """Run the ``signoff`` command line (the console script's entry point).

    Args:
        args: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 1 when a command fails, 2 on a usage error.
    """
    given = list(args) if args is not None else sys.argv[1:]
    for position, arg in enumerate(given, start=1):
        if not _is_text(arg):
            # Bytes that are not UTF-8 reach Python as lone surrogates, which no store, log
            # or audit record can hold: refused here for every option at once.
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            click.echo(f"error: argument {position} ({shown!r}) is not UTF-8 text", err=True)
            return 2
    try:
        with unwind_on_sigterm():
            status = cli.main(
                args=given,
                prog_name="signoff",
                standalone_mode=False,
            )
    except Terminated:
        tell_operator("error: terminated", action="command_terminated")
        return 128 + signal.SIGTERM
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        message = _one_line(exc.format_message()).rstrip(".")
        tell_operator(f"error: {_misplaced(exc) or message + hint}", action="command_misused")
        return exc.exit_code
    except click.ClickException as exc:
        tell_operator(f"error: {_one_line(exc.format_message())}", action="command_failed")
        return exc.exit_code
    except click.Abort:
        tell_operator("error: interrupted", action="command_interrupted")
        return 130
    return status if isinstance(status, int) else 0
