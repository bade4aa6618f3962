"""Slack settings, read from the environment once, at an entry point."""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import SettingsError


class BotSettings(BaseSettings):
    """What the Slack app needs. Each field is read from the variable named beside it.

    Example::

        settings = BotSettings.load()   # SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, ...
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    bot_token: str = Field(alias="SLACK_BOT_TOKEN")
    signing_secret: str = Field(alias="SLACK_SIGNING_SECRET")
    app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    channel: str = Field(alias="SIGNOFF_CHANNEL")
    #: seconds to wait for Slack's answer to one Web API call
    api_timeout: int = Field(default=30, ge=1, le=300, alias="SLACK_API_TIMEOUT")

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: str) -> str:
        if not value.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a channel id, e.g. C0123456789")
        return value.strip()

    @classmethod
    def load(cls, **overrides: object) -> BotSettings:
        """Read settings; one clear error names each missing or malformed variable."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "?"
                message = "is not set" if err["type"] == "missing" else str(err["msg"])
                problems.append(f"{name} {message.removeprefix('Value error, ')}")
            raise SettingsError("; ".join(problems)) from exc
