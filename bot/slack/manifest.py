"""The Slack app manifest, built from what the code uses: its slash commands and the Web API
methods it calls, each mapped to the one scope Slack requires for it (least privilege).

``signoff manifest`` prints it; ``manifest.yml`` is its output (a test keeps them equal),
and the sandbox reports the same scopes from ``auth.test``, so none of them can drift.

Example::

    print(render(socket_mode=False, url="https://signoff.example.com"))
"""

from __future__ import annotations

from typing import Any

import yaml

from signoff.bot.slack import ids

#: The public URL placeholder that ``--url`` replaces.
EXAMPLE_URL = "https://signoff.example.com"

#: Every Web API method the bot calls, and the bot scope Slack requires for it (None: none).
#: A test fails when the code calls a method that is missing here.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    # Before posting again after a lost answer, the channel or thread is searched for the post.
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    # A run whose messages are in a private channel is shown only to its members.
    "conversations.info": "groups:read",
    "conversations.members": "groups:read",
    "usergroups.users.list": "usergroups:read",
    # A decision is handed only to a person who is in the workspace.
    "users.info": "users:read",
    "views.open": None,
    "views.update": None,
    "views.publish": None,
}

#: Events the app listens to (``@app.event``), which Slack sends only when subscribed.
#: A user group's changes drop its cached members (``bot.slack.approvers``); both need
#: ``usergroups:read``, which ``usergroups.users.list`` already asks for.
BOT_EVENTS: tuple[str, ...] = ("app_home_opened", "subteam_members_changed", "subteam_updated")

#: Scopes needed for something other than a Web API call, with the reason.
EXTRA_SCOPES: dict[str, str] = {
    "commands": f"the {ids.RUNS_COMMAND} slash command",
    # Prompts go to SIGNOFF_CHANNEL, which the bot need not have been invited to.
    "chat:write.public": "posting prompts in a channel the bot was not invited to",
    # The same look-up as conversations.history, when SIGNOFF_CHANNEL is private.
    "groups:history": "finding an earlier post in a private channel",
    # conversations.info of a public channel (groups:read covers private ones only).
    "channels:read": "telling whether a run's channel is private",
}

#: The slash commands the app registers (see ``bot.slack.commands``).
COMMANDS: tuple[dict[str, Any], ...] = (
    {
        "command": ids.RUNS_COMMAND,
        "description": "List, show, start and cancel runs",
        "usage_hint": "[all|running|completed|failed|cancelled|FLOW|show RUN|start FLOW k=v|cancel RUN|help]",
        "should_escape": False,
    },
)

HEADER = """\
# Slack app manifest for Signoff, printed by `signoff manifest{options}`.
# Create the app at https://api.slack.com/apps -> "From an app manifest" and paste this.
# Scopes are only those the code needs: one per Web API method it calls
# (bot/slack/manifest.py).
"""


def bot_scopes() -> list[str]:
    """The bot scopes the app requests, sorted."""
    needed = {scope for scope in METHOD_SCOPES.values() if scope} | set(EXTRA_SCOPES)
    return sorted(needed)


def build(*, socket_mode: bool = False, url: str = EXAMPLE_URL) -> dict[str, Any]:
    """The manifest as data. In Socket Mode it has no request URLs.

    Args:
        socket_mode: whether Slack reaches the app over Socket Mode (``SLACK_APP_TOKEN``).
        url: the public base URL of ``signoff serve`` (HTTP mode).
    """
    events_url = url.rstrip("/") + "/slack/events"
    # In Slack's own order: command, url, description, ...
    commands = [
        {
            "command": c["command"],
            **({} if socket_mode else {"url": events_url}),
            **{k: v for k, v in c.items() if k != "command"},
        }
        for c in COMMANDS
    ]
    interactivity: dict[str, Any] = {"is_enabled": True}
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    if not socket_mode:
        interactivity["request_url"] = events_url
        events = {"request_url": events_url, **events}
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Signoff",
            "description": "Approvals and typed input for your Python flows, answered in Slack",
            "background_color": "#2c2d30",
        },
        "features": {
            # The Messages tab shows direct prompts and reassignments; the app reads no
            # messages, so people cannot write there (they would get no answer).
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "signoff", "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": bot_scopes()}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def render(*, socket_mode: bool = False, url: str = EXAMPLE_URL) -> str:
    """The manifest as YAML, with a header saying how it was made."""
    options = (" --socket-mode" if socket_mode else "") + (
        f" --url {url}" if url != EXAMPLE_URL else ""
    )
    body = yaml.safe_dump(build(socket_mode=socket_mode, url=url), sort_keys=False, width=100)
    return HEADER.format(options=options) + body
