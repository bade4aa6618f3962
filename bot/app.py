"""``create_app``: the Slack app (Bolt) over an engine, plus the notifier that posts for it."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot import commands, decisions, home, ids, interactions, reminders
from bot.approvers import Approvers
from bot.config import BotSettings
from bot.metrics import MeteredWebClient
from bot.notifier import SlackNotifier
from engine import DurableConsumer, Engine

logger = logging.getLogger(__name__)


class AnyServerErrorRetryHandler(RetryHandler):
    """Retries every 5xx; slack_sdk's own handler only retries 500 and 503."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


def create_client(settings: BotSettings) -> WebClient:
    """A WebClient that retries rate limits (honouring Retry-After), 5xx and dropped connections."""
    return MeteredWebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3),
            RateLimitErrorRetryHandler(max_retry_count=5),
            AnyServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def create_app(engine: Engine, settings: BotSettings, client: WebClient | None = None) -> App:
    """The Bolt app with every listener registered.

    Example::

        app = create_app(get_engine(), BotSettings.load())
    """
    client = client or create_client(settings)
    auth = client.auth_test()

    def authorize(
        enterprise_id: str | None, team_id: str | None, logger: logging.Logger
    ) -> AuthorizeResult:
        # One workspace, one token: no per-request auth.test round trip.
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=settings.bot_token,
            bot_id=auth.get("bot_id"),
            bot_user_id=auth.get("user_id"),
        )

    app = App(
        client=client,
        # Socket Mode frames come over our own authenticated WebSocket: nothing to sign.
        signing_secret=settings.signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
        authorize=authorize,
        token_verification_enabled=False,
        logger=logging.getLogger("bot.bolt"),
    )
    # Group membership comes from Slack; the engine applies the same rules to every caller.
    engine.set_group_directory(Approvers(client))
    interactions.register(app, engine)
    decisions.register(app, engine)
    commands.register(app, engine)
    home.register(app, engine)
    return app


def start_notifier(
    engine: Engine, settings: BotSettings, client: WebClient | None = None
) -> DurableConsumer:
    """Subscribe the Slack notifier to the engine's events, as the durable consumer ``slack``."""
    notifier = SlackNotifier(engine, client or create_client(settings), settings.channel)
    reminders.track(notifier)
    return engine.subscribe(ids.CONSUMER, notifier)
