"""Engine settings, read from ``SIGNOFF_*`` environment variables at an entry point."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigurationError


def _default_database_url() -> str:
    home = Path.home() / ".signoff"
    return f"sqlite:///{home / 'signoff.db'}"


class EngineSettings(BaseSettings):
    """How the engine reaches its database and how it watches its processes.

    Example::

        settings = EngineSettings.load()            # from the environment
        settings = EngineSettings.load(database_url="sqlite:///runs.db")
    """

    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", extra="ignore")

    #: ``sqlite:///path.db`` (the default, under ~/.signoff) or ``postgresql://user@host/db``
    database_url: str = Field(default_factory=_default_database_url)
    #: how often a process that owns runs proves it is alive
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    #: how long without a heartbeat before a process counts as gone
    owner_timeout_seconds: float = Field(default=10.0, gt=0)
    #: how often other processes' events are looked for on SQLite (PostgreSQL is pushed)
    poll_seconds: float = Field(default=0.002, gt=0)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}; use sqlite:///path or postgresql://..."
            )
        return value

    @classmethod
    def load(cls, **overrides: object) -> EngineSettings:
        """Read settings from the environment, raising one clear error naming the variable."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"SIGNOFF_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(f"invalid setting: {problems}") from exc
