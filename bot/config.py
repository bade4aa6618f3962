"""The bot's settings, read once at an entry point from the environment and a ``.env`` file.

A variable set in the environment wins over the same one in ``.env`` (in the current
directory). ``signoff config show`` prints what is in effect.

- ``BotSettings``: Slack (tokens, channel, API URL) for ``serve``.
- ``ServerSettings``: where ``serve`` listens (``SIGNOFF_HOST``, ``PORT``).
- ``LogSettings``: log level and format, for every command.

Each (and the Prefect backend's) is an ``EnvSettings``, whose ``load`` names every wrong
variable in one ``SettingsError``.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from signoff.bot.errors import EnvFileUnreadable, SettingsError

#: read by every settings class; the environment wins over it
ENV_FILE = ".env"
#: a Slack team (T...) or Enterprise Grid organisation (E...) id
_TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,30}")


def settings_problems(exc: ValidationError, settings: type[BaseSettings]) -> str:
    """One line naming each wrong variable, without pydantic's ``Value error, `` prefixes.

    A setting read from one of several variables (``SIGNOFF_PORT`` or ``PORT``) is named by
    the one its value came from: pydantic names the first, whichever was set.
    """
    problems = []
    for err in exc.errors():
        message = "is not set" if err["type"] == "missing" else str(err["msg"])
        message = message.removeprefix("Value error, ")
        empty = err.get("input") == "" and err["type"] not in ("missing", "value_error")
        if empty:
            # pydantic's "unable to parse string as an integer" hides that nothing was given.
            message = "is empty; give a value, or leave the variable out for its default"
        name = str(err["loc"][0]) if err["loc"] else ""
        variables = _variables(settings, name)
        if variables:
            missing = err["type"] == "missing"
            name = variables[0] if missing else _given_by(variables, err.get("input"))
        # Our own checks' messages go on from the name ("must be ..."); pydantic's own
        # are sentences of their own ("Input should be a valid integer").
        joined = " " if empty or err["type"] in ("missing", "value_error") else ": "
        problems.append(f"{name}{joined}{message}" if name else message)
    return "; ".join(problems)


def _variables(settings: type[BaseSettings], name: str) -> list[str]:
    """The variables a setting is read from, in order, for a field name or any of them."""
    for field_name, field in settings.model_fields.items():
        chosen = field.validation_alias
        if isinstance(chosen, AliasChoices):
            variables = [str(choice) for choice in chosen.choices]
        elif isinstance(chosen, str):
            variables = [chosen]
        else:
            variables = [field.alias] if field.alias else []
        if name == field_name or name in variables:
            return variables
    return []


def _given_by(variables: list[str], value: object) -> str:
    """Which of ``variables`` holds ``value``: the environment first, then ``.env``, each
    looked up as the settings look them up (names in any case)."""
    env_file = Path(ENV_FILE)
    dotenv = dotenv_values(env_file) if env_file.is_file() else {}
    for source in (os.environ, dotenv):
        found = {key.upper(): (key, given) for key, given in source.items()}
        for variable in variables:
            key, given = found.get(variable.upper(), (variable, None))
            if given is not None and given == value:
                return key  # as it was spelled (``port`` is read as ``PORT``)
    return variables[0]


def check_env_file() -> list[str]:
    """Read ``ENV_FILE`` once as the settings will; one warning for each line that is not
    ``NAME=value`` (the settings skip it), numbered but not quoted: it may hold a token.

    python-dotenv's own warning for such a line is silenced: it names no file, and comes
    again for every settings class that reads the file.

    Raises:
        EnvFileUnreadable: the file is not UTF-8 text (every settings class would fail on
            it) or cannot be read.
    """
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    env_file = Path(ENV_FILE)
    try:
        content = env_file.read_bytes() if env_file.is_file() else b""
    except OSError as exc:
        raise EnvFileUnreadable(f"{ENV_FILE} cannot be read: {exc.strerror}") from exc
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise EnvFileUnreadable(
            f"{ENV_FILE} is not UTF-8 text: line {line} holds byte "
            f"0x{content[exc.start]:02x}; save it as UTF-8"
        ) from exc
    return [
        f"{ENV_FILE} line {binding.original.line} is not NAME=value; it is ignored"
        for binding in parse_stream(io.StringIO(text))
        # A bare word (a token pasted alone, a name whose value was left off) parses as a
        # name with no value, which the settings skip as well.
        if binding.error or (binding.key is not None and binding.value is None)
    ]


class EnvSettings(BaseSettings):
    """Settings read from the environment and ``ENV_FILE``, each field from the variable its
    alias names; ``load`` refuses malformed ones with one ``SettingsError`` naming each."""

    # Tokens and secrets among them: pydantic's own text (which ``-v`` tracebacks show)
    # must not quote a value; ``settings_problems`` words each one.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_file=ENV_FILE, hide_input_in_errors=True
    )

    @classmethod
    def load(cls, **overrides: object) -> Self:
        """Read settings; one clear error names each missing or malformed variable.

        ``overrides`` are given by field name (``channel=...``) or variable name; one that
        is neither is refused (``permissions=`` for ``permissions_file=`` left the bot
        without its rules), not ignored as the environment's other variables are.
        """
        known = set(cls.model_fields)
        for field in cls.model_fields.values():
            for alias in (field.alias, field.validation_alias):
                if isinstance(alias, str):
                    known.add(alias)
                elif isinstance(alias, AliasChoices):
                    known.update(c for c in alias.choices if isinstance(c, str))
        for name in overrides:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(cls.model_fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SettingsError(f"{name!r} is no setting of {cls.__name__}{hint}")
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(settings_problems(exc, cls)) from exc


class BotSettings(EnvSettings):
    """What the Slack app needs. Each field is read from the variable named beside it.

    Example::

        settings = BotSettings.load()   # SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, ...
    """

    bot_token: str = Field(alias="SLACK_BOT_TOKEN")
    app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    #: HTTP mode checks every request with it; Socket Mode (``SLACK_APP_TOKEN``) needs none.
    #: Declared after ``app_token`` so that its check can see whether one is set.
    signing_secret: str | None = Field(
        default=None, alias="SLACK_SIGNING_SECRET", validate_default=True
    )
    api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    channel: str = Field(alias="SIGNOFF_CHANNEL")
    #: seconds to wait for Slack's answer to one Web API call
    api_timeout: int = Field(default=30, ge=1, le=300, alias="SLACK_API_TIMEOUT")
    #: Slack teams (``T...``) or Enterprise Grid organisations (``E...``), comma-separated,
    #: whose people may act on runs besides the app's own (Slack Connect partners)
    other_teams: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), alias="SIGNOFF_SLACK_OTHER_TEAMS"
    )

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: str) -> str:
        if not value.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token(cls, value: str | None) -> str | None:
        # Empty is unset, as for the signing secret: compose's ``${SLACK_APP_TOKEN:-}`` and a
        # systemd EnvironmentFile's ``SLACK_APP_TOKEN=`` set it so in HTTP mode.
        if value is None or not value.strip():
            return None
        if not value.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("other_teams", mode="before")
    @classmethod
    def _other_teams(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        teams = tuple(team.strip() for team in value.split(",") if team.strip())
        for team in teams:
            if not _TEAM_ID.fullmatch(team):
                raise ValueError(
                    f"holds {team[:40]!r}, which is not a Slack team or organisation id "
                    "(T0123ABCD or E0123ABCD, comma-separated)"
                )
        return teams

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a channel id, e.g. C0123456789")
        return value.strip()

    @field_validator("signing_secret")
    @classmethod
    def _signing_secret_for_http(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and info.data.get("app_token") is None:
            raise ValueError(
                "is not set (HTTP mode checks requests with it; "
                "Socket Mode, with SLACK_APP_TOKEN, needs none)"
            )
        return value or None

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token is set: Slack is reached over a WebSocket."""
        return self.app_token is not None


class ServerSettings(EnvSettings):
    """Where ``signoff serve`` listens: Slack's requests in HTTP mode, and in both modes
    ``/healthz``, ``/readyz`` and ``/metrics``. ``--host``/``--port`` override them."""

    host: str = Field(default="127.0.0.1", alias="SIGNOFF_HOST", min_length=1)
    #: ``PORT`` as Bolt's samples and most platforms set it; ``SIGNOFF_PORT`` wins over it
    port: int = Field(
        default=3000, validation_alias=AliasChoices("SIGNOFF_PORT", "PORT"), ge=0, le=65535
    )


class LogSettings(EnvSettings):
    """How every ``signoff`` command logs (see ``bot.cli.logs``)."""

    #: overrides the level a command logs at (``serve`` and ``worker``: INFO)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        default=None, alias="SIGNOFF_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", alias="SIGNOFF_LOG_FORMAT")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return text.upper() if text.upper() in logging.getLevelNamesMapping() else text.lower()
        return value
