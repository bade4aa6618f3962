"""``signoff config show``: every setting in effect, where it came from, secrets masked.

Settings come from the environment, then a ``.env`` file in the current directory, then
defaults. The command prints each variable once, and then any problem the settings have
(exit status 1), so that it doubles as a check before ``serve``; and a warning for each
``SIGNOFF_`` variable that is no setting (a typo leaves the real one at its default).
The Prefect backend's settings (and its permissions file) are checked when any of them
is set: only ``serve --backend prefect`` and the ``runs`` commands given ``--backend
prefect`` read them.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import click
from dotenv import dotenv_values

from signoff.bot.cli.render import dump_json, table_lines
from signoff.bot.cli.session import CliSession, pass_session
from signoff.bot.config import ENV_FILE, BotSettings, LogSettings, ServerSettings
from signoff.bot.errors import SettingsError
from signoff.engine import EngineError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variable:
    """One environment variable Signoff reads."""

    name: str
    default: str
    secret: bool = False
    #: other names read for the same setting, in order after ``name``
    aliases: tuple[str, ...] = ()


#: Every variable, in the order the README's table lists them.
VARIABLES = (
    Variable("SIGNOFF_DATABASE_URL", "sqlite:///~/.signoff/signoff.db"),
    Variable("SIGNOFF_CHANNEL", "(required for serve)"),
    Variable("SLACK_BOT_TOKEN", "(required for serve)", secret=True),
    Variable("SLACK_SIGNING_SECRET", "(required for serve in HTTP mode)", secret=True),
    Variable("SLACK_APP_TOKEN", "(unset: HTTP mode)", secret=True),
    Variable("SLACK_API_URL", "https://slack.com/api/"),
    Variable("SLACK_API_TIMEOUT", "30"),
    Variable("SIGNOFF_SLACK_OTHER_TEAMS", "(none: the app's own workspace only)"),
    Variable("SIGNOFF_HOST", "127.0.0.1"),
    Variable("SIGNOFF_PORT", "3000", aliases=("PORT",)),
    Variable("SIGNOFF_LOG_LEVEL", "(INFO for serve and worker, else WARNING)"),
    Variable("SIGNOFF_LOG_FORMAT", "text"),
    Variable("SIGNOFF_POOL_SIZE", "10"),
    Variable("SIGNOFF_POOL_MAX_OVERFLOW", "40"),
    Variable("SIGNOFF_HEARTBEAT_SECONDS", "2"),
    Variable("SIGNOFF_OWNER_TIMEOUT_SECONDS", "10"),
    Variable("SIGNOFF_POLL_SECONDS", "0.5"),
    Variable("SIGNOFF_ADMINS", "(none)"),
    Variable("SIGNOFF_OPERATOR", "(your login name)"),
    Variable("SIGNOFF_AUDIT_KEY", "(unset: plain SHA-256)", secret=True),
    Variable("PREFECT_API_URL", "(required for --backend prefect)"),
    Variable("PREFECT_API_AUTH_STRING", "(unset: a server without basic auth)", secret=True),
    Variable("PREFECT_API_KEY", "(unset: not Prefect Cloud)", secret=True),
    Variable("SIGNOFF_PREFECT_RECONCILE_SECONDS", "30"),
    Variable("SIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS", "30"),
    Variable("SIGNOFF_PREFECT_ANSWER_CLAIM_SECONDS", "60"),
    Variable("SIGNOFF_PREFECT_PERMISSIONS", "(unset: no rules beyond run tags)"),
)
#: every name a setting is read from
KNOWN = frozenset(name for v in VARIABLES for name in (v.name, *v.aliases))
#: the names only the Prefect backend reads
PREFECT = frozenset(name for name in KNOWN if name.startswith(("PREFECT_", "SIGNOFF_PREFECT_")))


#: Words in a URL's query parameter names that mark their values as secrets: libpq reads
#: ``password`` and ``sslpassword`` from the query string as well as from the user info.
SECRET_WORDS = ("password", "secret", "token", "key")


def mask(name: str, value: str, *, secret: bool = False) -> str:
    """A value safe to print: tokens keep their kind (``xoxb-``), URLs lose their password,
    in the user info or in the query string; a ``secret`` of another name (an auth string,
    ``user:password``) shows its length only."""
    if secret and not name.endswith(("_TOKEN", "_SECRET", "_KEY")):
        # By the variable, not its name: PREFECT_API_AUTH_STRING was shown as typed.
        return f"******** ({len(value)} character{'' if len(value) == 1 else 's'})"
    if name.endswith(("_TOKEN", "_SECRET", "_KEY")):
        kind, dash, _rest = value.partition("-")
        shown = f"{kind}-" if dash and len(kind) <= 5 else ""
        return f"{shown}******** ({len(value)} character{'' if len(value) == 1 else 's'})"
    if "://" not in value and "=" in value:
        # libpq's keyword form (host=h password=pw): each secret's value masked.
        return _SECRET_KEYWORD.sub(lambda found: f"{found.group(1)}********", value)
    if "://" in value:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - read to check it
        except ValueError:
            # Not a URL the settings accept (they say why); any password in it stays hidden.
            return value if "@" not in value and "?" not in value else "******** (not a URL)"
        if parts.password is not None:
            host = parts.hostname or ""
            if parts.port is not None:
                host += f":{parts.port}"
            netloc = f"{parts.username or ''}:********@{host}"
            value = urlunsplit(parts._replace(netloc=netloc))
        if parts.query:
            # Rebuilt by hand: urlunsplit would write sqlite:////abs as sqlite:///abs.
            head, _, rest = value.partition("?")
            query, hash_, fragment = rest.partition("#")
            value = f"{head}?{_masked_query(query)}{hash_}{fragment}"
    return value


#: a libpq keyword naming a secret, and its value (quoted, or up to the next space)
_SECRET_KEYWORD = re.compile(
    rf"(\b\w*(?:{'|'.join(SECRET_WORDS)})\w*\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


def _masked_query(query: str) -> str:
    """The query string with the value of each parameter that names a secret masked; the
    rest kept as written."""
    masked = []
    for pair in query.split("&"):
        key, equals, _value = pair.partition("=")
        secret = equals and any(word in unquote_plus(key).lower() for word in SECRET_WORDS)
        masked.append(f"{key}=********" if secret else pair)
    return "&".join(masked)


def effective(
    variable: Variable, environ: Mapping[str, str], dotenv: Mapping[str, str | None]
) -> tuple[str, str]:
    """A variable's value and where it came from: the environment, ``.env``, or the default."""
    for name in (variable.name, *variable.aliases):
        if name in environ:
            shown = mask(variable.name, environ[name], secret=variable.secret)
            return shown, f"environment ({name})"
    for name in (variable.name, *variable.aliases):
        found = dotenv.get(name)
        if found is not None:
            return mask(variable.name, found, secret=variable.secret), f"{ENV_FILE} ({name})"
    return variable.default, "default"


def unknown_names(names: Iterable[str]) -> list[str]:
    """A warning for each ``SIGNOFF_`` name that is no setting: most likely a typo, which
    would otherwise leave the setting at its default without a word."""
    found = []
    for name in sorted(n for n in set(names) if n.startswith("SIGNOFF_") and n not in KNOWN):
        close = difflib.get_close_matches(name, KNOWN, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        found.append(f"{name} is not a setting Signoff reads{hint}")
    return found


def warn_of_unknown_names() -> None:
    """Log a warning for each ``SIGNOFF_`` variable in the environment or ``.env`` that is
    no setting: every command but ``config`` and help calls it as it starts, since a typo
    (in ``SIGNOFF_DATABASE_URL``, say) leaves a command, or a replica, on the default
    without a word."""
    env_file = Path(ENV_FILE)
    dotenv = dotenv_values(env_file) if env_file.is_file() else {}
    for line in unknown_names([*os.environ, *dotenv]):
        logger.warning(line, extra={"action": "setting_unknown"})


def problems(session: CliSession, given: Iterable[str]) -> list[str]:
    """What is wrong with the settings, one line each (nothing when all is well).

    ``given`` are the names set in the environment or ``.env``: a Prefect variable among
    them gets the Prefect backend's settings checked too, as ``serve --backend prefect``
    reads them.
    """
    loads: list[Callable[[], object]] = [
        session.settings,
        BotSettings.load,
        ServerSettings.load,
        LogSettings.load,
    ]
    if PREFECT.intersection(name.upper() for name in given):  # read in any case
        loads += [_load_prefect_settings, _read_prefect_permissions]
    found = []
    for load in loads:
        try:
            load()
        except (SettingsError, EngineError) as exc:
            found.append(str(exc))
    return found


def _load_prefect_settings() -> None:
    """Read the Prefect backend's settings, as ``serve`` does."""
    try:
        from signoff.bot.backends.prefect import PrefectSettings
    except ImportError as exc:
        raise SettingsError(
            "the Prefect backend's variables are set, but not its extra: "
            f"pip install 'signoff[prefect]' ({exc})"
        ) from exc
    PrefectSettings.load()


def _read_prefect_permissions() -> None:
    """Read the permissions file on its own: a wrong URL must not hide a wrong file."""
    try:
        from signoff.bot.backends.prefect.settings import PermissionsFileSetting
    except ImportError:
        return  # said once, by _load_prefect_settings
    PermissionsFileSetting.load().permissions()


@click.group("config")
def config() -> None:
    """Show the settings in effect."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_session
def show(session: CliSession, as_json: bool) -> None:
    """Print every setting, its source and value (secrets masked); exit 1 on a problem."""
    env_file = Path(ENV_FILE)
    dotenv = dotenv_values(env_file) if env_file.is_file() else {}
    environ = dict(os.environ)
    if session.database_url:
        environ["SIGNOFF_DATABASE_URL"] = session.database_url
    rows = [[v.name, *effective(v, environ, dotenv)] for v in VARIABLES]
    root = click.get_current_context().find_root()
    if root.get_parameter_source("database_url") is click.core.ParameterSource.COMMANDLINE:
        # Given as --database-url, which goes before the environment's value.
        for row in rows:
            if row[0] == "SIGNOFF_DATABASE_URL" and session.database_url:
                row[2] = "--database-url"
    wrong = problems(session, [*environ, *(name for name, value in dotenv.items() if value)])
    unknown = unknown_names([*environ, *dotenv])
    if as_json:
        click.echo(
            dump_json(
                {
                    "settings": {
                        name: {"value": value, "source": src} for name, value, src in rows
                    },
                    "problems": wrong,
                    "warnings": unknown,
                }
            )
        )
    else:
        click.echo("\n".join(table_lines(["VARIABLE", "VALUE", "SOURCE"], rows)))
        for line in wrong:
            click.echo(f"problem: {line}")
        for line in unknown:
            click.echo(f"warning: {line}")
    if wrong:
        raise click.exceptions.Exit(1)


__all__ = ["KNOWN", "VARIABLES", "config", "mask", "unknown_names", "warn_of_unknown_names"]
