"""What one person sees in the sandbox page: sidebar, channel or Home tab, thread, modal.

:func:`regions` draws each part of the page as HTML for one :class:`Place` (who you are,
which conversation, which thread). The page swaps a part in only when its HTML changed, so
what you type into an open modal survives new messages arriving around it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from signoff.bot.sandbox.records import EphemeralMessage, Message, OpenView, User
from signoff.bot.sandbox.web.blocks import Surface, environment, render_blocks
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["REGIONS", "Place", "regions", "regions_key"]

#: The parts of the page that change, in the order they are drawn.
REGIONS = ("sidebar", "main", "thread", "modal")


@dataclass(frozen=True)
class Place:
    """Where in the sandbox a person is looking.

    Attributes:
        user: Whose eyes: a member id (``U0ALICE``).
        channel: The conversation shown (``C0GENERAL``, or a DM id).
        thread: The ts of the thread open on the right, if any.
        home: True when the app's Home tab is shown instead of the conversation.
    """

    user: str
    channel: str
    thread: str | None = None
    home: bool = False

    def query(self, **changes: Any) -> str:
        """This place as a query string, with ``changes`` applied (for links)."""
        values = {"as": self.user, "c": self.channel, "thread": self.thread, "home": self.home}
        values.update(changes)
        pairs = [("as", values["as"]), ("c", values["c"])]
        if values["thread"]:
            pairs.append(("thread", values["thread"]))
        if values["home"]:
            pairs.append(("home", "1"))
        return "?" + urlencode(pairs)


@dataclass
class Feedback:
    """What the page shows that the workspace does not hold: errors under inputs, notices.

    Attributes:
        errors: (user, view id, view hash) -> input block_id -> error text.
        notices: user -> a line shown above their modal or channel.
    """

    errors: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)


def _members(ws: Workspace) -> list[User]:
    found = [ws.user(ref) for ref in ws.names()]
    return [u for u in found if u is not None and not u.is_bot]


def _channels(ws: Workspace) -> list[tuple[str, str]]:
    return sorted(
        ((ref, name) for ref, name in ws.names().items() if ref[:1] in "CG"),
        key=lambda pair: pair[1],
    )


class _Drawer:
    """Renders messages and views for one place, sharing names and pickers' choices."""

    def __init__(self, ws: Workspace, place: Place, feedback: Feedback) -> None:
        self.ws = ws
        self.place = place
        self.feedback = feedback
        self.names = ws.names()
        self.viewer = ws.user(place.user)
        self.tz = self.viewer.tz if self.viewer else "UTC"
        self.users = [(u.id, u.name) for u in _members(ws)]
        self.channels = _channels(ws)

    def surface(self, **kwargs: Any) -> Surface:
        return Surface(
            names=self.names, users=self.users, channels=self.channels, tz=self.tz, **kwargs
        )

    def message(
        self, message: Message | EphemeralMessage, replies: int = 0, in_thread: bool = False
    ) -> dict[str, Any]:
        ephemeral = isinstance(message, EphemeralMessage)
        author = self.ws.bot_user if ephemeral else self.ws.user(message.user)
        surface = self.surface(
            kind="ephemeral" if ephemeral else "message", channel=message.channel, ts=message.ts
        )
        body: Markup = (
            render_blocks(message.blocks, surface)
            if message.blocks
            else environment().filters["mrkdwn"](message.text, self.names)
        )
        return {
            "ts": message.ts,
            "author": author.real_name if author else message.user,
            "is_bot": bool(author and author.is_bot),
            "initial": (author.real_name if author else message.user)[:1].upper(),
            "body": body,
            "edited": bool(message.edits),
            "ephemeral": ephemeral,
            "replies": replies,
            "thread_link": None if in_thread else self.place.query(thread=message.ts, home=False),
        }

    def conversation(self) -> dict[str, Any]:
        channel = self.ws.channel(self.place.channel)
        own = [e for e in self.ws.ephemeral(self.place.user) if e.channel == channel.id]
        items: list[tuple[str, Message | EphemeralMessage, int]] = [
            (m.ts, m, len(channel.thread(m.ts))) for m in channel.messages
        ]
        items += [(e.ts, e, 0) for e in own if not e.thread_ts]
        items.sort(key=lambda item: float(item[0]))
        title = f"#{channel.name}" if channel.kind == "channel" else "Signoff"
        return {"title": title, "messages": [self.message(m, n) for _, m, n in items]}

    def thread(self) -> dict[str, Any] | None:
        if not self.place.thread or self.place.home:
            return None
        channel = self.ws.channel(self.place.channel)
        parent = channel.message(self.place.thread)
        if parent is None:
            return None
        replies: list[Message | EphemeralMessage] = list(channel.thread(parent.ts))
        replies += [
            e
            for e in self.ws.ephemeral(self.place.user)
            if e.channel == channel.id and e.thread_ts == parent.ts
        ]
        replies.sort(key=lambda m: float(m.ts))
        return {
            "parent": self.message(parent, in_thread=True),
            "replies": [self.message(m, in_thread=True) for m in replies],
            "close": self.place.query(thread=None),
            "channel": f"#{channel.name}" if channel.kind == "channel" else "Signoff",
        }

    def view(self, view: OpenView, depth: int = 1) -> dict[str, Any]:
        errors = self.feedback.errors.get((view.user, view.id, view.hash), {})
        surface = self.surface(kind="view", view_id=view.id, state=view.state_values, errors=errors)
        data: Mapping[str, Any] = view.view
        return {
            "id": view.id,
            "hash": view.hash,
            "title": view.title,
            "submit": (data.get("submit") or {}).get("text"),
            "close": (data.get("close") or {}).get("text") or "Cancel",
            "body": render_blocks(view.blocks, surface),
            "depth": depth,
            "callback_id": view.callback_id,
        }


def regions(ws: Workspace, place: Place, feedback: Feedback) -> dict[str, Markup]:
    """Each part of the page (see :data:`REGIONS`) as HTML, for one person at one place."""
    drawer = _Drawer(ws, place, feedback)
    env = environment()
    dm = ws.channel(place.user)
    home = ws.home_view(place.user)
    context: dict[str, Any] = {
        "place": place,
        "viewer": drawer.viewer,
        "users": drawer.users,
        "channels": drawer.channels,
        "dm": dm.id if dm.kind == "im" else None,
        "notice": feedback.notices.get(place.user),
    }
    if place.home:
        context["home"] = drawer.view(home) if home else None
    else:
        context["conversation"] = drawer.conversation()
    context["thread"] = drawer.thread()
    stack = ws.view_stack(place.user)
    context["modal"] = drawer.view(stack[-1], len(stack)) if stack else None
    return {name: Markup(env.get_template(f"{name}.html").render(context)) for name in REGIONS}


def regions_key(parts: Mapping[str, str]) -> str:
    """A short fingerprint of the drawn regions; the page polls until it changes."""
    digest = hashlib.sha1(usedforsecurity=False)
    for name in REGIONS:
        digest.update(parts.get(name, "").encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]
