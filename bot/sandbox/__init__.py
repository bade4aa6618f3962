"""A local Slack for testing approval flows: Web API emulator, workspace inspection, driver.

Loopback only; no network. Typical end-to-end test::

    from bot.sandbox import SlackSandbox

    with SlackSandbox() as slack:
        app = create_app(client=slack.client(), signing_secret="s3cr3t")   # your app
        ...serve the app on http://127.0.0.1:3000/slack/events...
        driver = slack.driver("http://127.0.0.1:3000/slack/events", "s3cr3t")
        driver.slash_command("alice", "/runs", "pending")
        request = slack.wait_for(lambda ws: ws.channel("C0GENERAL").last)
        driver.click("alice", request, action_id="provide_input")
        slack.wait_for(lambda ws: ws.open_view("U0ALICE"))
        assert driver.submit("alice", {"reason": "ok"}).status == 200

Modules: :mod:`.workspace` (state), :mod:`.webapi` (HTTP server) and :mod:`.methods` (Web API
methods), :mod:`.driver` (signed requests to the app), :mod:`.forms` (filling in views),
:mod:`.render` (text renderings), :mod:`.pytest_plugin` (the ``slack_sandbox`` fixture; enable
with ``pytest_plugins = ["bot.sandbox.pytest_plugin"]``).
"""

from __future__ import annotations

from bot.sandbox.driver import Driver
from bot.sandbox.errors import (
    ConditionTimeout,
    FieldRejected,
    NoSuchUser,
    NothingToInteractWith,
    SandboxError,
    SandboxNotRunning,
    SubmitBlocked,
    UnknownField,
)
from bot.sandbox.forms import client_problems, element_state, fill_state
from bot.sandbox.records import (
    Call,
    Channel,
    EphemeralMessage,
    JsonDict,
    Message,
    OpenView,
    User,
    Usergroup,
)
from bot.sandbox.render import block_kit_builder_url, render_message, render_view
from bot.sandbox.sandbox import SlackSandbox
from bot.sandbox.transport import AppResponse
from bot.sandbox.workspace import DEFAULT_USERS, Workspace

__all__ = [
    "DEFAULT_USERS",
    "AppResponse",
    "Call",
    "Channel",
    "ConditionTimeout",
    "Driver",
    "EphemeralMessage",
    "FieldRejected",
    "JsonDict",
    "Message",
    "NoSuchUser",
    "NothingToInteractWith",
    "OpenView",
    "SandboxError",
    "SandboxNotRunning",
    "SlackSandbox",
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
    "render_view",
]
