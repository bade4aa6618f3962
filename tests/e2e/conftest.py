"""The bot served for the redelivery tests, over HTTP and over Socket Mode, shared so that
both delivery paths are set up one way (a module's own ``bot`` fixture takes precedence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.sandbox import Driver, SlackSandbox
from signoff.bot.slack.server import Server
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine

APP_TOKEN = "xapp-1-test"


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    """The bot over HTTP, on a fresh sandbox."""
    with running_bot(engine=engine) as running:
        yield running


@pytest.fixture
def socket_bot(engine: Engine) -> Iterator[tuple[SlackSandbox, Driver]]:
    """The bot over Socket Mode, on a fresh sandbox, and a driver that sends it envelopes."""
    with SlackSandbox(app_token=APP_TOKEN) as slack:
        settings = BotSettings.load(
            bot_token=slack.token,
            app_token=APP_TOKEN,
            api_url=slack.api_url,
            channel="C0GENERAL",
        )
        server = Server(EmbeddedBackend(engine), settings, port=0)
        server.start()
        try:
            yield slack, slack.socket_driver()
        finally:
            server.stop()
