"""``SlackSandbox``: a local Slack for tests and demos, as one context manager."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from slack_sdk import WebClient

from signoff.bot.sandbox.errors import NoSuchUser
from signoff.bot.sandbox.records import (
    Call,
    Channel,
    EphemeralMessage,
    JsonDict,
    Message,
    OpenView,
    User,
    Usergroup,
)
from signoff.bot.sandbox.socket_mode import SocketModeDriver, SocketModeServer
from signoff.bot.sandbox.transport import HttpDriver
from signoff.bot.sandbox.webapi import WebApiServer
from signoff.bot.sandbox.workspace import DEFAULT_USERS, Workspace

__all__ = ["SlackSandbox"]

_T = TypeVar("_T")


class SlackSandbox:
    """A loopback Slack: a Web API emulator, a workspace to inspect, and a driver.

    Start it with ``with``; the server listens on ``127.0.0.1`` and an ephemeral port until the
    block ends. Point the app's ``WebClient`` at :attr:`api_url` and drive it with
    :meth:`driver` (an app served over HTTP) or :meth:`socket_driver` (an app connected in
    Socket Mode, which it does through ``apps.connections.open`` with any ``xapp-`` token)::

        with SlackSandbox() as slack:
            client = WebClient(token="xoxb-test", base_url=slack.api_url)
            client.chat_postMessage(channel="C0GENERAL", text="hello")
            assert slack.channel("C0GENERAL").last.text == "hello"

    Seeded: users ``U0ALICE`` (alice), ``U0BOB`` (bob), ``U0CAROL`` (carol), the bot user
    ``U0SIGNOFF`` and the channel ``C0GENERAL`` (#general). Any ``C...`` id posted to is created.

    Args:
        team_id: Team id used in payloads and answers.
        team_domain: Team subdomain.
        bot_token: Accept only this token (default: any ``xoxb-`` token).
        app_token: Accept only this app-level token for Socket Mode (default: any ``xapp-``).
        users: Members to seed instead of alice, bob and carol.
        clock: Monotonic seconds for trigger_id and response_url expiry; pass a fake to test
            expiry without sleeping.
        trigger_ttl: Seconds a trigger_id stays usable (Slack: 3).
    """

    def __init__(
        self,
        *,
        team_id: str = "T0SANDBOX",
        team_domain: str = "sandbox",
        bot_token: str | None = None,
        app_token: str | None = None,
        users: Sequence[User] = DEFAULT_USERS,
        clock: Callable[[], float] = time.monotonic,
        trigger_ttl: float = 3.0,
    ) -> None:
        self.workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            clock=clock,
            trigger_ttl=trigger_ttl,
            users=users,
        )
        self.socket_mode = SocketModeServer(self.workspace)
        self.server = WebApiServer(
            self.workspace, bot_token=bot_token, socket_mode=self.socket_mode, app_token=app_token
        )
        self.token = bot_token or "xoxb-sandbox"
        self.app_token = app_token or "xapp-1-sandbox"

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the Web API server and the Socket Mode endpoint (done by ``with``)."""
        self.server.start()
        self.socket_mode.start()

    def stop(self) -> None:
        """Stop both servers (done by ``with``); Socket Mode clients get a close frame."""
        self.socket_mode.stop()
        self.server.stop()

    @property
    def port(self) -> int:
        """The server's port."""
        return self.server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.base_url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>/api/``, for ``WebClient(base_url=...)``."""
        return f"{self.server.base_url}/api/"

    def client(self, **kwargs: Any) -> WebClient:
        """A ``slack_sdk.WebClient`` pointed at the sandbox with a valid bot token."""
        return WebClient(token=self.token, base_url=self.api_url, **kwargs)

    def driver(self, app_url: str, signing_secret: str, *, timeout: float = 10.0) -> HttpDriver:
        """A :class:`~bot.sandbox.Driver` that sends signed Slack requests to the app at ``app_url``."""
        return HttpDriver(self.workspace, self.base_url, app_url, signing_secret, timeout=timeout)

    def socket_driver(self, *, timeout: float = 10.0) -> SocketModeDriver:
        """A :class:`~bot.sandbox.Driver` that delivers over the app's Socket Mode connection.

        Example:
            >>> handler = SocketModeHandler(app, slack.app_token)  # app.client on slack.api_url
            >>> handler.connect()
            >>> slack.socket_driver().slash_command("alice", "/runs", "help").status
            200

        Args:
            timeout: Seconds to wait for the app to be connected, and for each ack.
        """
        return SocketModeDriver(self.workspace, self.base_url, self.socket_mode, timeout=timeout)

    # -- setup ------------------------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, real_name: str | None = None, *, team_id: str = ""
    ) -> User:
        """Add a member, e.g. ``add_user("U0DAVE", "dave", "Dave Diaz")``; with ``team_id``,
        a guest from another organisation, as in a Slack Connect channel."""
        return self.workspace.add_user(user_id, name, real_name, team_id=team_id)

    def add_usergroup(self, group_id: str, handle: str, users: Sequence[str]) -> Usergroup:
        """Add a user group, e.g. ``add_usergroup("S0OPS", "ops", ["U0ALICE"])``; members
        are ids or handles of people the workspace has.

        Raises:
            NoSuchUser: A member is not in the workspace (a misspelt one would never match
                anyone who answers, and the test would only time out).
        """
        members = []
        for ref in users:
            user = self.user(ref)
            if user is None:
                raise NoSuchUser(
                    f"no user {ref!r} in the sandbox workspace for user group {handle!r}"
                    " (add_user them first)"
                )
            members.append(user.id)
        return self.workspace.add_usergroup(group_id, handle, members)

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        private: bool = False,
        members: Sequence[str] = (),
    ) -> Channel:
        """Create a channel, e.g. ``add_channel("C0DEPLOYS", "deploys")``; a private one
        with its members: ``add_channel("C0HR", "hr", private=True, members=["carol"])``."""
        return self.workspace.add_channel(channel_id, name, private=private, members=members)

    def revoke_app_token(self, error: str = "token_revoked") -> None:
        """Revoke the app-level token, as an admin does on the app's settings page: Slack
        closes the app's Socket Mode connections and ``apps.connections.open`` answers
        ``error`` from then on (the bot token still works)."""
        self.server.revoke_app_token(error)
        self.socket_mode.close_connections()

    def withhold_scopes(self, *scopes: str) -> None:
        """Answer as Slack does an app installed without ``scopes``, e.g. before the
        manifest asked for them: ``withhold_scopes("channels:read", "groups:read")``."""
        self.server.withhold_scopes(*scopes)

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        error: str | None = None,
        when: Callable[[JsonDict], bool] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (see ``WebApiServer.fail_next``);
        with ``when``, only the calls whose arguments it accepts.

        Example:
            >>> slack.fail_next("chat.postMessage", status=429, retry_after=1)
            >>> slack.fail_next("views.open", status=503)
            >>> slack.fail_next("chat.update", status=200, error="cant_update_message")
            >>> slack.fail_next("chat.postMessage", status=500, when=lambda a: a["channel"] == "U0BOB")
        """
        self.server.fail_next(
            method, times, status=status, retry_after=retry_after, error=error, when=when
        )

    def answer_late(
        self,
        method: str,
        seconds: float,
        times: int = 1,
        *,
        when: Callable[[JsonDict], bool] | None = None,
        until: threading.Event | None = None,
    ) -> None:
        """Let the next ``times`` calls of ``method`` take effect at once but answer only
        after ``seconds``, or once ``until`` is set; with ``when``, only the calls whose
        arguments it accepts (see ``WebApiServer.answer_late``).

        Example:
            >>> slack.answer_late("chat.postMessage", 5)  # stored now, answered in 5 s
        """
        self.server.answer_late(method, seconds, times, when=when, until=until)

    def issue_trigger(self, user: str) -> str:
        """A fresh trigger_id for ``user``, as if they had just clicked something."""
        return self.workspace.issue_trigger(self._uid(user))

    def new_response_url(self, user: str, channel: str, message: Message | None = None) -> str:
        """A response_url for ``user`` in ``channel`` (tied to ``message`` for replace/delete)."""
        url_id = self.workspace.issue_response_url(
            self._uid(user), channel, message.ts if message else None
        )
        return f"{self.base_url}/response/{url_id}"

    # -- inspection -------------------------------------------------------------------------

    def _uid(self, ref: str) -> str:
        return self.workspace.user_id(ref)

    def user(self, ref: str) -> User | None:
        """A member by id or handle."""
        uid = self._uid(ref)
        return self.workspace.user(uid)

    def channel(self, ref: str) -> Channel:
        """A conversation by id, ``#name``, or user (their DM with the bot)."""
        return self.workspace.channel(self._uid(ref))

    def thread(self, channel: str, ts: str) -> tuple[Message, ...]:
        """The replies to message ``ts`` in ``channel``."""
        return self.channel(channel).thread(ts)

    def ephemeral(self, user: str) -> list[EphemeralMessage]:
        """Ephemeral messages ``user`` can see."""
        return self.workspace.ephemeral(self._uid(user))

    def open_view(self, user: str) -> OpenView | None:
        """The modal view on top of ``user``'s stack, or None."""
        return self.workspace.open_view(self._uid(user))

    def view_stack(self, user: str) -> list[OpenView]:
        """``user``'s modal stack, root first."""
        return self.workspace.view_stack(self._uid(user))

    def home_view(self, user: str) -> OpenView | None:
        """``user``'s Home tab view, or None."""
        return self.workspace.home_view(self._uid(user))

    def calls(self, method: str | None = None) -> list[Call]:
        """Web API calls received so far (``"response_url"`` for response_url posts)."""
        return self.workspace.calls(method)

    def wait_for(self, predicate: Callable[[Workspace], _T | None], timeout: float = 5.0) -> _T:
        """Wait until ``predicate(workspace)`` is truthy and return its value.

        Re-checked after every change to the workspace; no polling sleeps. ``KeyError`` and
        ``IndexError`` in the predicate count as "not yet".

        Example:
            >>> message = slack.wait_for(lambda ws: ws.channel("C0GENERAL").last)
            >>> view = slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=2)

        Raises:
            ConditionTimeout: Still falsy after ``timeout`` seconds (an ``AssertionError``).
        """
        return self.workspace.wait_for(predicate, timeout)

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``method`` was called at least ``count`` times; return those calls."""

        def enough(ws: Workspace) -> list[Call] | None:
            calls = ws.calls(method)
            return calls if len(calls) >= count else None

        return self.wait_for(enough, timeout)
