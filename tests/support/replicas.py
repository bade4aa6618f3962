"""A second replica of a running bot: its own engine and HTTP server on the same database
and workspace, as a deployment scaled to two would have."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, RunningBot
from signoff.engine import Engine, EngineSettings


@contextlib.contextmanager
def another_replica(bot: RunningBot, database_url: str) -> Iterator[Server]:
    """A replica of ``bot`` on ``database_url``, started; stopped with its engine on exit.
    Requests reach it at ``f"{replica.url}/slack/events"``."""
    engine = Engine(EngineSettings.load(database_url=database_url, heartbeat_seconds=0.5))
    settings = BotSettings.load(
        bot_token=bot.slack.token,
        signing_secret=SIGNING_SECRET,
        api_url=bot.slack.api_url,
        channel=bot.channel,
    )
    replica = Server(EmbeddedBackend(engine), settings, port=0)
    try:
        replica.start()
        yield replica
    finally:
        replica.stop()
        engine.close()
