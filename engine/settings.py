"""Engine settings, read from ``SIGNOFF_*`` environment variables at an entry point."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from signoff.engine.actors import check_id_case, check_not_group, check_one_line
from signoff.engine.errors import ConfigurationError

#: the longest interval a setting in seconds may name (a day): a longer one is a typo, and
#: an infinite one overflows the timers that use it
_DAY = 86_400


def _default_database_url() -> str:
    home = Path.home() / ".signoff"
    return f"sqlite:///{home / 'signoff.db'}"


class EngineSettings(BaseSettings):
    """How the engine reaches its database and how it watches its processes.

    Example::

        settings = EngineSettings.load()            # from the environment
        settings = EngineSettings.load(database_url="sqlite:///runs.db")
    """

    # hide_input_in_errors: ``-v`` prints the error's traceback, and pydantic's own text
    # quotes the value, a database URL's password with it; ``_problems`` words each one.
    model_config = SettingsConfigDict(
        env_prefix="SIGNOFF_", extra="ignore", env_file=".env", hide_input_in_errors=True
    )

    #: ``sqlite:///path.db`` (the default, under ~/.signoff) or ``postgresql://user@host/db``
    database_url: str = Field(default_factory=_default_database_url)
    #: how often a process that owns runs proves it is alive (at least every 0.1 s: more
    #: often only spins a core writing heartbeats)
    heartbeat_seconds: float = Field(default=2.0, ge=0.1, le=_DAY, allow_inf_nan=False)
    #: how long without a heartbeat before this process counts as gone: stored with the
    #: process, so that every other judges it by this figure, whatever its own (workers look
    #: for gone processes' runs every half of their own)
    owner_timeout_seconds: float = Field(default=10.0, gt=0, le=_DAY, allow_inf_nan=False)
    #: SQLite: how often to look for other processes' events in case a wake-up signal was
    #: lost (they arrive by a local signal at once; where none can be had, every 2 ms at
    #: most). PostgreSQL pushes them by LISTEN/NOTIFY.
    poll_seconds: float = Field(default=0.5, ge=0.01, le=_DAY, allow_inf_nan=False)
    #: PostgreSQL: connections each process keeps open (its threads wait for one of them),
    #: and how many more it may open (the event reader's, and past a 5 s wait)
    pool_size: int = Field(default=10, ge=1, le=1000)
    pool_max_overflow: int = Field(default=40, ge=0, le=1000)
    #: ids (people or groups) who may start and cancel any run and reassign any pause;
    #: ``SIGNOFF_ADMINS=U1,S2`` (comma-separated) or a JSON list
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: the name the CLI acts under when no ``--as`` is given (default: the login name)
    operator: str | None = Field(default=None, min_length=1, max_length=200)
    #: with a key, audit hashes are HMAC-SHA256 under it: rewriting the chain needs the key
    audit_key: SecretStr | None = None

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        return _admin_ids(value) if isinstance(value, str) else value

    @field_validator("admins")
    @classmethod
    def _admins_as_slack_spells_them(cls, value: list[str]) -> list[str]:
        for number, found in enumerate(value, start=1):
            check_id_case(found, f"id {number}")
        return value

    @field_validator("audit_key")
    @classmethod
    def _audit_key_given(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty key would hash the trail with no key at all, while the variable looks
        # set (``SIGNOFF_AUDIT_KEY=${KEY}`` with KEY unset): refused, not taken for none.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "is empty; set a key, or leave the variable out to hash the trail without one"
            )
        return value

    @field_validator("operator")
    @classmethod
    def _operator_one_person(cls, value: str | None) -> str | None:
        # The CLI records whoever it acts as under this name, in the trail that people read,
        # and an Actor refuses what is refused here: refused as the setting, not mid-command.
        if value is None:
            return value
        what = "the operator name"
        check_one_line(value, what)
        if not value.strip():
            raise ValueError(
                "is blank; name who the CLI acts as, or leave the variable out for your login name"
            )
        if value != value.strip():
            raise ValueError(
                f"{what} {value!r} has spaces around it: it would be another person than "
                f"{value.strip()!r}"
            )
        return check_not_group(check_id_case(value, what), what)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # Blanks around it come from a copy and paste or a quoted .env line: kept, a space
        # would end the name of a new SQLite file, or the name of a PostgreSQL database.
        value = value.strip()
        if not value:
            # An unset shell variable, most likely: not taken for the default database.
            raise ValueError("is empty; give a database URL (sqlite:///path or postgresql://...)")
        if ":" not in value and (
            value.startswith(("/", ".", "~")) or value.endswith((".db", ".sqlite", ".sqlite3"))
        ):
            # A path where a URL belongs: say which URL it meant, rather than call the
            # whole path a scheme.
            raise ValueError(f"is a file path, not a URL: write sqlite:///{value}")
        if "://" not in value and "=" in value:
            # libpq's keyword form: not echoed, since it may hold a password.
            raise ValueError(
                "is a libpq keyword string (host=... dbname=...), not a URL: write "
                "postgresql://user:password@host:5432/dbname"
            )
        if "://" not in value:
            raise ValueError("is not a URL: write sqlite:///path or postgresql://...")
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}; use sqlite:///path or postgresql://..."
            )
        driver = value.split(":", 1)[0].partition("+")[2]
        if driver and driver not in {"pysqlite", "psycopg"}:
            ours = "sqlite:///path" if scheme == "sqlite" else "postgresql://..."
            raise ValueError(
                f"names the driver {driver!r}; Signoff connects with its own (psycopg 3 for "
                f"PostgreSQL): write {ours} without a driver"
            )
        try:
            parsed = make_url(value)
            parsed.port  # noqa: B018 - read to check it: the URL's parser leaves that to use
        except (ValueError, ArgumentError) as exc:
            raise ValueError(f"is not a database URL: {_url_problem(value, exc)}") from None
        if scheme == "sqlite" and parsed.host:
            # sqlite://x.db: the file's name read as a host, and the database in memory.
            raise ValueError(
                f"names {parsed.host!r} as a host, after two slashes; a SQLite file takes "
                f"three: sqlite:///{parsed.host}{'/' + parsed.database if parsed.database else ''}"
            )
        if scheme in {"postgresql", "postgres"} and importlib.util.find_spec("psycopg") is None:
            raise ValueError(
                "names PostgreSQL, whose driver is not installed; "
                "install it with: pip install 'signoff[postgres]'"
            )
        return value

    @property
    def in_memory(self) -> bool:
        """Whether the database is SQLite in memory (``sqlite://``, ``sqlite:///``,
        ``sqlite:///:memory:``): new and empty in every process, gone when the process ends."""
        parsed = make_url(self.database_url)
        return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> EngineSettings:
        # A process proves it lives every heartbeat; one that misses a beat must not look
        # gone already, or another worker takes over runs it still runs.
        if self.heartbeat_seconds * 2 > self.owner_timeout_seconds:
            raise ValueError(
                f"SIGNOFF_HEARTBEAT_SECONDS ({self.heartbeat_seconds:g}) must be at most half "
                f"SIGNOFF_OWNER_TIMEOUT_SECONDS ({self.owner_timeout_seconds:g}): a process "
                "would look gone between its heartbeats, and its runs be taken over"
            )
        return self

    @classmethod
    def load(cls, **overrides: object) -> EngineSettings:
        """Read settings from the environment, raising one clear error naming the variable.

        ``overrides`` are given by field name (``database_url=...``); a name that is no
        setting is refused, not ignored as the environment's other variables are.
        """
        for name in overrides:
            if name not in cls.model_fields:
                close = difflib.get_close_matches(name, list(cls.model_fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(f"invalid setting: {name!r} is no setting{hint}")
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ConfigurationError(f"invalid setting: {_problems(exc)}") from exc


def _url_problem(url: str, exc: Exception) -> str:
    """What is wrong with ``url``'s host or port, in words, where the parser's own error
    (``exc``) names neither ("invalid literal for int() with base 10: ':1'"). Never the
    password: only what follows the last ``@`` is quoted."""
    rest = url.partition("://")[2]
    location = rest.split("/", 1)[0].rpartition("@")[2]
    if location.startswith("[") and "]" not in location:
        return f"its host {location!r} opens a [ that is never closed (an IPv6 address)"
    port = location.rpartition("]")[2] if location.startswith("[") else location
    port = port.rpartition(":")[2] if ":" in port else ""
    if port and not port.isdigit():
        return f"its port {port!r} is not a number"
    return str(exc)


def _admin_ids(text: str) -> list[str]:
    """The ids ``SIGNOFF_ADMINS`` names: separated by commas, or a JSON list.

    Raises:
        ValueError: the text is JSON but no list of ids (an object, a list holding numbers
            or empty texts), an id has quotes or brackets in it, or is Slack ids separated
            otherwise (``U0ALICE S0OPS``): taken as they are, these would name admins
            nobody is, and leave the real ones without their rights.
    """
    text = text.strip()
    if not text.startswith(("[", "{")):
        ids = [part.strip() for part in text.split(",") if part.strip()]
        for number, found in enumerate(ids, start=1):
            if _NOT_IN_IDS.search(found):
                raise ValueError(f"id {number} ({found!r}) has quotes or brackets in it; {_SHAPE}")
            _refuse_several(f"id {number}", found)
        return ids
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not a JSON list ({exc}); {_SHAPE}") from None
    if not isinstance(parsed, list):  # text that starts with "{"
        raise ValueError(f"is a JSON object, not a list; {_SHAPE}")
    for number, item in enumerate(parsed, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(
                f"item {number} ({json.dumps(item)}) is not an id (a non-empty text); {_SHAPE}"
            )
        _refuse_several(f"item {number}", item.strip())
    return [item.strip() for item in parsed]


def _refuse_several(which: str, found: str) -> None:
    """Refuse one id that is Slack ids separated by spaces or semicolons (``U0ALICE
    S0OPS``): taken whole, it names an admin nobody is, and the real ones lack their rights.
    A name with a space in it (a CLI operator's) stays one id."""
    parts = _SEPARATED.split(found)
    if len(parts) > 1 and all(_SLACK_ID.fullmatch(part) for part in parts):
        raise ValueError(f"{which} ({found!r}) is several Slack ids in one; {_SHAPE}")


#: what ``SIGNOFF_ADMINS`` takes, said in each error about it
_SHAPE = 'give ids separated by commas (U0ALICE,S0OPS) or a JSON list (["U0ALICE", "S0OPS"])'
#: characters no person's or group's id holds: they are left over from JSON or shell quoting
_NOT_IN_IDS = re.compile(r"[\"'\[\]{}]")
#: what a list of ids written another way separates them by
_SEPARATED = re.compile(r"[\s;]+")
#: a Slack user's or group's id (U024BE7LH, W0ALICE, S0OPS): a digit in it, unlike a name
_SLACK_ID = re.compile(r"[UWS](?=[A-Z]*[0-9])[A-Z0-9]{2,}")


def _problems(exc: ValidationError) -> str:
    """One part per variable, naming it once, with what is wrong with it (with each item
    of a list, when several are wrong), without pydantic's ``Value error, `` prefixes."""
    found: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = err["loc"]
        message = str(err["msg"]).removeprefix("Value error, ")
        if err.get("input") == "" and err["type"] != "value_error":
            # pydantic's "unable to parse string as a number" hides that nothing was given.
            message = "is empty; give a value, or leave the variable out for its default"
        if len(loc) > 1 and isinstance(loc[1], int):
            message = f"item {loc[1] + 1}: {message}"
        found.setdefault(f"SIGNOFF_{str(loc[0]).upper()}: " if loc else "", []).append(message)
    return "; ".join(name + "; ".join(messages) for name, messages in found.items())
