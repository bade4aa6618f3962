"""``create_app``: the Slack app (Bolt) over a backend, plus the notifier that posts for it."""

from __future__ import annotations

import logging
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from signoff.bot.backends import Backend, Watch
from signoff.bot.config import BotSettings
from signoff.bot.errors import SlackUnreachable, TokenRefused
from signoff.bot.slack import (
    approvers,
    commands,
    decisions,
    home,
    ids,
    input_forms,
    interactions,
    redelivery,
    reminders,
    teams,
)
from signoff.bot.slack.answering import Answerer
from signoff.bot.slack.approvers import Approvers
from signoff.bot.slack.channel_access import ChannelAccess
from signoff.bot.slack.failures import log_failure
from signoff.bot.slack.form_schemas import FormSchemas
from signoff.bot.slack.input_forms import InputForms
from signoff.bot.slack.manifest import bot_scopes
from signoff.bot.slack.metrics import MeteredWebClient, count_listener_calls
from signoff.bot.slack.notifier import SlackNotifier
from signoff.bot.slack.sealing import Sealer

logger = logging.getLogger(__name__)

#: Listener threads. Every listener acks at once, then keeps its thread for its slow part
#: (a Slack call, a database write). While Slack answers slowly those parts pile up, and
#: once they hold every thread a new request's ack waits behind them, past Slack's 3 s: 32
#: threads were used up by 33 clicks while views.open took 4 s. Threads are made only when
#: needed, and one blocked on Slack costs little memory.
LISTENER_THREADS = 256
#: HTTP worker threads of ``signoff serve``.
HTTP_THREADS = 16

# The start-up check says what went wrong in one line; slack_sdk's per-attempt log lines
# would only repeat it.
_QUIET = logging.Logger("signoff.bot.startup_check", level=logging.CRITICAL + 1)


class _TokenFromAuthorize(logging.Filter):
    """Drops Bolt's start-up warnings that the token it found is not used: Bolt reads
    ``SLACK_BOT_TOKEN`` from the environment whatever it is given, where Signoff's settings
    put it too, and the app's listeners get the very same token from ``authorize``."""

    UNUSED = frozenset((warning_client_prioritized_and_token_skipped(), warning_token_skipped()))

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.UNUSED


class _BoltAction(logging.Filter):
    """Names Bolt's records (the Socket Mode client's too: it logs through the app's
    logger) ``slack_bolt``: every record of a Signoff logger has an ``action``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "action", None):
            record.action = "slack_bolt"
        return True


#: The logger Bolt logs to, without its start-up noise. Never below INFO, whatever the
#: root level: its DEBUG lines, and the Socket Mode client's, hold each request's whole
#: body or envelope (a /runs command's response_url, what a person typed in a form).
_BOLT_LOGGER = logging.getLogger("signoff.bot.bolt")
_BOLT_LOGGER.setLevel(logging.INFO)
_BOLT_LOGGER.addFilter(_TokenFromAuthorize())
_BOLT_LOGGER.addFilter(_BoltAction())


#: Calls that create something: after a dropped connection, a timeout or a 5xx, Slack may
#: have done them, so they are not retried blindly (the notifier reconciles instead).
NOT_IDEMPOTENT = ("chat.postMessage",)


def _idempotent(request: HttpRequest) -> bool:
    return not request.url.rstrip("/").endswith(NOT_IDEMPOTENT)


class AnyServerErrorRetryHandler(RetryHandler):
    """Retries every 5xx of a call that is safe to repeat; slack_sdk's own handler only
    retries 500 and 503."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600 and _idempotent(request)


class SafeConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Retries a dropped connection or a timeout only for calls that are safe to repeat."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _idempotent(request) and bool(
            super()._can_retry(state=state, request=request, response=response, error=error)
        )


#: Calls that spend a click's trigger_id, which Slack honours for 3 seconds after the click.
TRIGGER_BOUND = ("views.open", "views.push")
#: the longest Retry-After worth waiting for with a trigger_id in hand
TRIGGER_WAIT_SECONDS = 1.0
#: Who is in an approving user group, read as someone clicks (the cache is cold, or was
#: dropped by a change): they wait on it. Past this, the members read before stand in, or
#: they are told to try again, rather than hear nothing for minutes of Retry-After.
GROUP_READ = "usergroups.users.list"
GROUP_READ_WAIT_SECONDS = 2.0


class RateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Waits out a 429 as Slack asks, except for a call that spends a trigger_id when
    Slack asks for longer than ``TRIGGER_WAIT_SECONDS``: by then the trigger has expired,
    and the person is better told at once to click again; likewise a user group's members
    past ``GROUP_READ_WAIT_SECONDS``."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        url = request.url.rstrip("/")
        if url.endswith(TRIGGER_BOUND):
            longest = TRIGGER_WAIT_SECONDS
        elif url.endswith(GROUP_READ):
            longest = GROUP_READ_WAIT_SECONDS
        else:
            return True
        given = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), [])
        try:
            seconds = float(given[0] if isinstance(given, list) else given)
        except (IndexError, TypeError, ValueError):
            return False
        return seconds <= longest


def create_client(settings: BotSettings) -> WebClient:
    """A WebClient that retries rate limits (honouring Retry-After), and 5xx and dropped
    connections for calls that are safe to repeat; it counts every call for /metrics."""
    return MeteredWebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        timeout=int(settings.api_timeout),
        retry_handlers=[
            SafeConnectionErrorRetryHandler(max_retry_count=3),
            RateLimitRetryHandler(max_retry_count=5),
            AnyServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def check_slack(settings: BotSettings) -> dict[str, Any]:
    """Ask Slack who the bot token belongs to (``auth.test``), once, at start-up.

    Raises:
        SlackUnreachable: nothing answered at ``SLACK_API_URL``.
        TokenRefused: Slack refused ``SLACK_BOT_TOKEN`` (``invalid_auth``, ...).
    """
    client = WebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        timeout=settings.api_timeout,
        logger=_QUIET,
    )
    client.retry_handlers = [
        RateLimitErrorRetryHandler(max_retry_count=2),
        AnyServerErrorRetryHandler(max_retry_count=2),
        ConnectionErrorRetryHandler(max_retry_count=2),
    ]
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        data, status = exc.response.data, exc.response.status_code
        error = data.get("error") if isinstance(data, dict) else None
        if status >= 500 or not error:
            # A 5xx, or a page from a proxy in front of Slack: nothing said of the token.
            said = f" ({error})" if error else ""
            raise SlackUnreachable(
                settings.api_url, f"HTTP {status}{said}, not an answer about the token"
            ) from exc
        raise TokenRefused("SLACK_BOT_TOKEN", str(error)) from exc
    except urllib.error.URLError as exc:
        raise SlackUnreachable(settings.api_url, str(exc.reason)) from exc
    except OSError as exc:  # timeouts and resets that urllib does not wrap
        raise SlackUnreachable(settings.api_url, str(exc) or type(exc).__name__) from exc
    _say_missing_scopes(answer.headers)
    return dict(answer.data)  # type: ignore[arg-type]


def _say_missing_scopes(headers: dict[str, Any]) -> None:
    """Log, at start-up, the manifest's scopes the installed app lacks (an app installed
    before the manifest asked for them): what needs them then fails or falls back."""
    granted = next((v for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    if not isinstance(granted, str):
        return  # not told (a proxy, an older Slack): nothing to compare
    have = {s.strip() for s in granted.split(",")}
    missing = [s for s in bot_scopes() if s not in have]
    if missing:
        logger.warning(
            "the installed Slack app lacks scopes the manifest asks for: %s; add them "
            "(reinstall the app from the manifest, `signoff manifest`)",
            ", ".join(missing),
            extra={"action": "slack_scopes_missing", "scopes": missing},
        )


def _unhandled_is_acknowledged(
    error: Exception, body: dict[str, Any], response: BoltResponse
) -> None:
    """A well-formed request no listener wants (a view closed, an unknown button) gets 200:
    Slack would otherwise show the person an error for something that needs nothing. A
    command that is not ours is told so."""
    if isinstance(error, BoltUnhandledRequestError):
        response.status = 200
        command = body.get("command") if isinstance(body, dict) else None
        response.body = f"Signoff has no command {str(command)[:32]}." if command else ""
        response.headers["content-type"] = ["text/plain; charset=utf-8"]
        return
    log_failure(error)


def form_sealer(settings: BotSettings) -> Sealer:
    """What seals the metadata of the forms the app opens, and opens it again."""
    # Socket Mode may run without a signing secret; the app-level token is as secret.
    return Sealer(settings.signing_secret or settings.app_token or "")


def create_app(
    backend: Backend,
    settings: BotSettings,
    client: WebClient | None = None,
    *,
    auth: dict[str, Any] | None = None,
    forms: InputForms | None = None,
    behind_edge: bool = False,
    groups: Approvers | None = None,
) -> App:
    """The Bolt app with every listener registered.

    ``auth`` is ``check_slack``'s answer when the caller has it already. ``groups``: the
    cache of user groups' members, shared with the process's notifier so that a change
    Slack tells of reaches both. ``forms`` takes
    input forms' submissions (the caller stops its ``Answerer`` after the app; one is made
    when not given, and finishes its work when the process exits). ``behind_edge``:
    every HTTP request reaches the app through ``bot.slack.edge.SlackEdge``, which checks
    the signature on the raw body and hands an interactivity payload on as JSON, so Bolt
    does not check it again (it could not: the body it gets is not the one signed).

    Example::

        app = create_app(EmbeddedBackend(get_engine()), BotSettings.load())
    """
    client = client or create_client(settings)
    auth = auth if auth is not None else check_slack(settings)

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

    # Bolt warns at every start when an app has a token and an authorize function; the
    # app's client goes without one (each listener's client gets the token from authorize),
    # and _TokenFromAuthorize drops the warning about the one Bolt reads from the environment.
    app_client = WebClient(
        base_url=client.base_url, timeout=client.timeout, retry_handlers=client.retry_handlers
    )
    app = App(
        client=app_client,
        # Socket Mode frames come over our own authenticated WebSocket: nothing to sign.
        signing_secret=settings.signing_secret or "",
        request_verification_enabled=not settings.socket_mode and not behind_edge,
        authorize=authorize,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=True,
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="signoff-listener"
        ),
        logger=_BOLT_LOGGER,
    )
    app.error(_unhandled_is_acknowledged)
    # First: a redelivery is dropped before anything (a refusal included) acts on it.
    # Without the edge (Socket Mode) events are claimed here too.
    redelivery.register(app, backend, events=not behind_edge)
    count_listener_calls(app)
    allowed = teams.allowed_teams(auth, settings.other_teams)
    teams.register(app, allowed)
    # Group membership comes from Slack; the backend applies the same rules to every caller.
    groups = groups or Approvers(client)
    backend.set_group_directory(groups)
    forms = forms or InputForms(
        backend, FormSchemas(), form_sealer(settings), Answerer(backend, client)
    )
    forms.allowed_teams = allowed
    sealer = forms.sealer
    interactions.register(app, backend, forms.schemas, sealer)
    input_forms.register(app, forms)
    decisions.register(app, backend, sealer)
    commands.register(app, backend, sealer, ChannelAccess(backend, settings.channel))
    home.register(app, backend)
    approvers.register(app, groups)
    return app


def start_notifier(
    backend: Backend,
    settings: BotSettings,
    client: WebClient | None = None,
    groups: Approvers | None = None,
) -> Watch:
    """Subscribe the Slack notifier to the backend's run changes, as the consumer ``slack``
    (``groups``: the app's cache of user groups' members, see ``create_app``)."""
    notifier = SlackNotifier(
        backend, client or create_client(settings), settings.channel, groups=groups
    )
    reminders.track(notifier)
    watch = backend.watch(ids.CONSUMER, notifier, kept=SlackNotifier.KEPT)
    notifier.fence = watch.check_lease
    watch.start()
    return watch
