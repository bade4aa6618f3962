"""A local Slack for testing approval flows: Web API emulator, workspace inspection, driver.

Loopback only; no network. Typical end-to-end test::

    from signoff.bot.sandbox import SlackSandbox

    with SlackSandbox() as slack:
        app = create_app(client=slack.client(), signing_secret="s3cr3t")   # your app
        ...serve the app on http://127.0.0.1:3000/slack/events...
        driver = slack.driver("http://127.0.0.1:3000/slack/events", "s3cr3t")
        driver.slash_command("alice", "/runs", "pending")
        request = slack.wait_for(lambda ws: ws.channel("C0GENERAL").last)
        driver.click("alice", request, action_id="provide_input")
        slack.wait_for(lambda ws: ws.open_view("U0ALICE"))
        assert driver.submit("alice", {"reason": "ok"}).status == 200

An app in Socket Mode needs no URL: it calls ``apps.connections.open`` on the sandbox's Web API
with an app-level token (``xapp-...``) and connects to the WebSocket URL it gets back. Drive it
with ``slack.socket_driver()`` instead; the acks come back as the same :class:`AppResponse`::

    with SlackSandbox() as slack:
        handler = SocketModeHandler(app, slack.app_token)      # app.client on slack.api_url
        handler.connect()
        driver = slack.socket_driver()
        assert driver.slash_command("alice", "/runs", "help").status == 200
        handler.close()                                        # before the sandbox stops

Modules: :mod:`.workspace` (state, kept in :mod:`.conversations`, :mod:`.triggers`,
:mod:`.views` and :mod:`.records`, with ids from :mod:`.identifiers`), :mod:`.errors` (the
error Slack would return), :mod:`.webapi` (HTTP server) and :mod:`.methods` (Web API methods),
:mod:`.driver` (acting as users), :mod:`.app_responses` (what Slack does with the app's
answers), :mod:`.transport` (delivering over HTTP, signed), :mod:`.socket_mode` (delivering
over Socket Mode, on the ``websockets`` library), :mod:`.forms` (filling in views),
:mod:`.render` (text renderings), :mod:`.web` (the sandbox as a page in a browser, ``signoff
sandbox``). The ``slack_sandbox`` and ``signoff_bot`` fixtures live in
``bot.testing.pytest_plugin``, registered through the ``pytest11`` entry point once Signoff is
installed.
"""

from __future__ import annotations

from signoff.bot.sandbox.driver import Driver
from signoff.bot.sandbox.errors import (
    AppNotConnected,
    ConditionTimeout,
    FieldRejected,
    NoSuchUser,
    NotAcknowledged,
    NothingToInteractWith,
    SandboxError,
    SandboxNotRunning,
    SubmitBlocked,
    UnknownField,
)
from signoff.bot.sandbox.forms import client_problems, element_state, fill_state
from signoff.bot.sandbox.records import (
    AppResponse,
    Call,
    Channel,
    EphemeralMessage,
    JsonDict,
    Message,
    OpenView,
    User,
    Usergroup,
)
from signoff.bot.sandbox.render import (
    block_kit_builder_url,
    render_message,
    render_mrkdwn,
    render_view,
)
from signoff.bot.sandbox.sandbox import SlackSandbox
from signoff.bot.sandbox.socket_mode import SocketModeDriver
from signoff.bot.sandbox.transport import HttpDriver
from signoff.bot.sandbox.workspace import DEFAULT_USERS, Workspace

__all__ = [
    "DEFAULT_USERS",
    "AppNotConnected",
    "AppResponse",
    "Call",
    "Channel",
    "ConditionTimeout",
    "Driver",
    "EphemeralMessage",
    "FieldRejected",
    "HttpDriver",
    "JsonDict",
    "Message",
    "NoSuchUser",
    "NotAcknowledged",
    "NothingToInteractWith",
    "OpenView",
    "SandboxError",
    "SandboxNotRunning",
    "SlackSandbox",
    "SocketModeDriver",
    "SubmitBlocked",
    "UnknownField",
    "User",
    "Usergroup",
    "Workspace",
    "block_kit_builder_url",
    "client_problems",
    "element_state",
    "fill_state",
    "render_message",
    "render_mrkdwn",
    "render_view",
]
