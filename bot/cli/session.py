"""What one ``signoff`` invocation shares between its commands: flags and the engine.

The engine is opened on first use, not when the command line is parsed, so ``--help``
and usage errors never touch the database (nor import it: the engine's heavier parts are
imported where they are used).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from signoff.bot.backends.run_ids import too_short_to_act
from signoff.engine import (
    Actor,
    ConfigurationError,
    DatabaseNotFound,
    DatabaseUnavailable,
    SchemaOutdated,
)
from signoff.engine.actors import check_id_case, check_one_line, is_group_id

if TYPE_CHECKING:
    from signoff.engine import Engine, EngineSettings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

logger = logging.getLogger(__name__)
#: how often a long-running command starting while the database cannot be reached tries
UNREACHABLE_RETRY_SECONDS = 1.0


class CliSession:
    """The global options of one invocation, and the engine it opened (if any)."""

    def __init__(self, *, verbose: bool = False, database_url: str | None = None) -> None:
        self.verbose = verbose
        self.database_url = database_url
        #: upgrade an outdated schema on open (``serve``/``worker --migrate``); otherwise
        #: an outdated database is refused, and only an empty one gets the schema
        self.migrate = False
        #: make a SQLite file that is not there yet (the commands that store runs: ``run``,
        #: ``worker``, ``serve``); the others only look at or act on stored runs, and a
        #: path with a typo in it gets an error rather than an empty database
        self.create = False
        self._engine: Engine | None = None

    def settings(self) -> EngineSettings:
        """The engine settings this invocation uses (``--database-url`` over the environment).

        Raises:
            ConfigurationError: a setting is malformed, or the database is SQLite in memory:
                each command is a process of its own, so whatever one stored (a run, a
                schema upgrade) would be gone before the next looked.
        """
        from signoff.engine import EngineSettings

        overrides = {"database_url": self.database_url} if self.database_url else {}
        settings = EngineSettings.load(**overrides)
        if settings.in_memory:
            raise ConfigurationError(
                "the database is in memory (sqlite:// with no file path), so it is new and "
                "empty in every process; give SIGNOFF_DATABASE_URL (or --database-url) a "
                "file: sqlite:///path.db"
            )
        return settings

    def engine(self) -> Engine:
        """The process's engine, opened from ``SIGNOFF_*`` settings (and ``--database-url``).

        It is closed when the command finishes.

        Returns:
            The engine that ``engine.get_engine()`` returns from now on.

        Raises:
            ConfigurationError: a setting is malformed.
            StoreError: the database cannot be opened.
            click.ClickException: the schema is outdated and ``migrate`` is off, or the
                SQLite file is not there and ``create`` is off.
        """
        from signoff.engine import Engine, get_engine, set_engine

        if self._engine is None:
            try:
                self._engine = Engine(self.settings(), migrate=self.migrate, create=self.create)
            except SchemaOutdated as exc:
                raise click.ClickException(
                    f"{exc}; run 'signoff db upgrade' first (signoff worker and signoff serve "
                    "also take --migrate)"
                ) from exc
            except DatabaseNotFound as exc:
                raise click.ClickException(
                    name_database_source(
                        f"{exc}; check SIGNOFF_DATABASE_URL (or --database-url): "
                        "'signoff worker', 'signoff run' or 'signoff db upgrade' makes the "
                        "database",
                        click.get_current_context(),
                    )
                ) from exc
            set_engine(self._engine)
            click.get_current_context().find_root().call_on_close(self.close)
        return get_engine()

    def when_reachable(self, start: Callable[[], T], until: threading.Event) -> T | None:
        """``start()`` (which opens the engine and starts on it), for ``serve`` and
        ``worker``: a database that cannot be reached yet (down, restarting, failing over)
        is waited for, trying every second from a fresh engine, as a worker already running
        rides out an outage. None if ``until`` is set first (the command was stopped). A
        setting that is wrong (a password, a host name) fails at once, as before.

        ``start`` undoes what it started before it raises.
        """
        waited = 0
        while True:
            try:
                started = start()
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self.close()
                if not waited:
                    logger.warning(
                        "cannot reach the database yet (%s); trying again every second",
                        name_database_source(str(exc), click.get_current_context()),
                        extra={"action": "database_unreachable_at_start"},
                    )
                waited += 1
                if until.wait(UNREACHABLE_RETRY_SECONDS):
                    return None
                continue
            if waited:
                logger.info(
                    "reached the database after %d tries",
                    waited + 1,
                    extra={"action": "database_reached"},
                )
            return started

    def close(self) -> None:
        """Stop the engine's threads and release the database."""
        from signoff.engine import set_engine

        if self._engine is not None:
            opened, self._engine = self._engine, None
            set_engine(None)
            opened.close()


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised from, the engine's ``DatabaseUnavailable`` (a
    backend raises it as its own ``BackendUnavailable``)."""
    while exc is not None:
        if isinstance(exc, DatabaseUnavailable):
            return True
        exc = exc.__cause__
    return False


#: what the engine calls the setting that names the database, and how it names it in its
#: errors (it knows only the variable)
DATABASE_VARIABLE = "SIGNOFF_DATABASE_URL"
_SOURCE_WORDING = (
    (f"{DATABASE_VARIABLE} (or --database-url)", "--database-url"),
    (f"the database at {DATABASE_VARIABLE}", "the database given with --database-url"),
    (DATABASE_VARIABLE, "--database-url"),
)


def name_database_source(message: str, ctx: click.Context) -> str:
    """``message`` (an engine or settings error) naming where the database URL came from:
    ``--database-url`` when it was typed on the command line, where the engine's wording
    sends the operator to ``SIGNOFF_DATABASE_URL``, which may name another database or none.
    """
    typed = ctx.find_root().get_parameter_source("database_url")
    if typed is not click.core.ParameterSource.COMMANDLINE:
        return message
    for engine_words, ours in _SOURCE_WORDING:
        message = message.replace(engine_words, ours)
    return message


def check_person(ctx: click.Context, param: click.Parameter, name: str | None) -> str | None:
    """A click callback for options naming a person (``--as``, ``--started-by``, ``--to``):
    refused by name here, with the option, if the engine could not record them, or if
    it is a Slack user group's id: answering as ``S0SRE`` counted the group as one of a
    quorum's different people, and put a group in the trail as who decided.

    Raises:
        click.BadParameter: too long, empty, with spaces around it, holding a NUL
            character, a Slack user group's id, or a Slack id in lowercase (``u0bob``).
    """
    if name is not None:
        # Before the engine's own refusal (an Actor is no group either), to name --group.
        if is_group_id(name):
            raise click.BadParameter(
                f"{name} is a Slack user group; name one person (a member's id), and the "
                "groups they are in with --group"
                if param.name == "responder"
                else f"{name} is a Slack user group; name one person (a member's id)"
            )
        try:
            Actor(name)
            check_id_case(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return name


def check_one_person(ctx: click.Context, param: click.Parameter, name: str | None) -> str | None:
    """``check_person`` for ``--to``: the person a decision is handed to is the one it
    waits for (a group would let whoever of it answered already count again, or nobody
    be told)."""
    if name is not None and is_group_id(name):
        raise click.BadParameter(
            f"{name} is a Slack user group; hand a decision to one person (a member's id)"
        )
    return check_person(ctx, param, name)


def check_acting_run(_ctx: click.Context, _param: click.Parameter, run_id: str) -> str:
    """A click callback for the RUN of a command that acts on it (resume, reassign,
    cancel): a prefix shorter than ``MIN_ACTING_PREFIX`` is refused, naming it, before
    anything is opened (``runs cancel 1`` cancelled the only run whose id starts with 1).

    Raises:
        click.BadParameter: ``run_id`` is too short.
    """
    problem = too_short_to_act(run_id)
    if problem is not None:
        raise click.BadParameter(problem)
    return run_id


def check_groups(
    _ctx: click.Context, _param: click.Parameter, groups: tuple[str, ...]
) -> tuple[str, ...]:
    """A click callback for ``--group`` (repeatable): each names a group the engine can
    record, refused by name here otherwise.

    Raises:
        click.BadParameter: a group is empty (an unset shell variable), has spaces around
            it, holds a control character or is a Slack id in lowercase (``s0ops``).
    """
    for group in groups:
        if not group.strip():
            raise click.BadParameter("is empty; give a group id or leave the option out")
        try:
            check_one_line(group, "group id")
            check_id_case(group, "group id")
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if group != group.strip():
            raise click.BadParameter(f"{group!r} has spaces around it: it would match no group")
    return groups


def check_filled(_ctx: click.Context, _param: click.Parameter, text: str | None) -> str | None:
    """A click callback for a filter such as ``--flow``: an empty value is refused (an
    unset shell variable), rather than filtering on nothing.

    Raises:
        click.BadParameter: empty or only spaces.
    """
    if text is not None and not text.strip():
        raise click.BadParameter("is empty; give a name or leave the option out")
    return text


def check_each_filled(
    _ctx: click.Context, _param: click.Parameter, texts: tuple[str, ...]
) -> tuple[str, ...]:
    """``check_filled`` for a repeatable option such as ``--flows``: ``--flows ""`` (an
    unset shell variable) would otherwise name the working directory.

    Raises:
        click.BadParameter: a value is empty or only spaces.
    """
    if any(not text.strip() for text in texts):
        raise click.BadParameter("is empty; give a path or module, or leave the option out")
    return texts


def flows_option(
    help_text: str = "A flows file or module to load (repeatable).",
    *,
    required: bool = False,
) -> Callable[[F], F]:
    """``--flows PATH_OR_MODULE`` (repeatable, none empty), passed as ``sources``: the same
    option wherever a command loads flows, worded for what it loads them for."""
    return click.option(
        "--flows",
        "sources",
        multiple=True,
        callback=check_each_filled,
        required=required,
        metavar="PATH_OR_MODULE",
        help=help_text,
    )


def migrate_option() -> Callable[[F], F]:
    """``--migrate``, for the long-running commands (``serve``, ``worker``): their session
    upgrades an outdated schema as it opens the database, instead of refusing it."""

    def set_migrate(ctx: click.Context, _param: click.Parameter, migrate: bool) -> None:
        ctx.ensure_object(CliSession).migrate = migrate

    return click.option(
        "--migrate",
        is_flag=True,
        expose_value=False,
        callback=set_migrate,
        help="Upgrade an outdated database schema instead of refusing it.",
    )


#: Passes the invocation's ``CliSession`` as a command's first argument.
pass_session = click.make_pass_decorator(CliSession, ensure=True)
