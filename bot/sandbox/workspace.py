"""The sandbox's workspace: users, channels, messages, views, triggers and the call log.

All state lives behind one re-entrant lock and a condition variable. Every change notifies
waiters, which is what lets ``wait_for`` block until the app (running on other threads) has
done something, instead of sleeping. Readers get frozen snapshots (:mod:`.records`).

The workspace itself keeps the lock, the call log and the people (members and user groups);
the rest it keeps in stores it calls under the lock: conversations and messages
(:mod:`.conversations`), trigger_ids and response_urls (:mod:`.triggers`), and views
(:mod:`.views`).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from signoff.bot.sandbox.conversations import ConversationStore
from signoff.bot.sandbox.errors import ApiFailure, ConditionTimeout
from signoff.bot.sandbox.forms import StateValues
from signoff.bot.sandbox.identifiers import IdSource
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
from signoff.bot.sandbox.triggers import ResponseUrl, TriggerStore
from signoff.bot.sandbox.views import AppIdentity, ViewStore

__all__ = ["DEFAULT_USERS", "ResponseUrl", "Workspace"]

#: Longest a views.update waits for the answer to a submission of the same view (Slack
#: waits 3 s for that answer).
SUBMISSION_WAIT = 5.0

_T = TypeVar("_T")

#: Seeded into every new workspace.
DEFAULT_USERS: tuple[User, ...] = (
    User("U0ALICE", "alice", "Alice Adams", "alice@example.com"),
    User("U0BOB", "bob", "Bob Brown", "bob@example.com"),
    User("U0CAROL", "carol", "Carol Chen", "carol@example.com"),
)


class Workspace:
    """One team's state, shared by the Web API server and the driver.

    Args:
        team_id: The team id put into payloads and answers.
        team_domain: The team's subdomain.
        clock: Seconds, monotonic; decides trigger_id and response_url expiry.
        trigger_ttl: How long a trigger_id stays usable.
        users: Members to seed; defaults to :data:`DEFAULT_USERS`.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0SANDBOX",
        team_domain: str = "sandbox",
        clock: Callable[[], float] = time.monotonic,
        trigger_ttl: float = 3.0,
        users: Sequence[User] = DEFAULT_USERS,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = "A0SIGNOFF"
        self.bot_id = "B0SIGNOFF"
        self.bot_user = User("U0SIGNOFF", "signoff", "Signoff", is_bot=True)
        self.default_channel = "C0GENERAL"
        self.clock = clock
        self.trigger_ttl = trigger_ttl
        self._cond = threading.Condition(threading.RLock())
        self._ids = IdSource()
        self._users: dict[str, User] = {u.id: u for u in (*users, self.bot_user)}
        self._groups: dict[str, Usergroup] = {}
        self._conversations = ConversationStore(self._ids)
        self._views = ViewStore(self._ids, AppIdentity(team_id, self.app_id, self.bot_id))
        self._triggers = TriggerStore(self._ids)
        self._calls: list[Call] = []
        #: views whose submission the app has not answered yet (view id -> how many)
        self._submitting: dict[str, int] = {}
        self.add_channel(self.default_channel, "general")

    @contextmanager
    def _change(self) -> Iterator[None]:
        with self._cond:
            yield
            self._cond.notify_all()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Hold the workspace while one request takes effect and is logged, so that whoever
        waits sees both or neither (a message seen before its call was logged made
        ``calls()`` come up one short)."""
        with self._change():
            yield

    # -- waiting and the call log -----------------------------------------------------------

    def wait_for(self, predicate: Callable[[Workspace], _T | None], timeout: float = 5.0) -> _T:
        """Block until ``predicate(workspace)`` is truthy and return its value.

        The predicate runs under the workspace lock after every change. ``LookupError``
        (``KeyError``, ``IndexError``) inside it counts as "not yet".

        Raises:
            ConditionTimeout: The predicate was still falsy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last_error: LookupError | None = None
        with self._cond:
            while True:
                try:
                    result = predicate(self)
                except LookupError as exc:
                    last_error = exc
                else:
                    if result:
                        return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = ", ".join(c.method for c in self._calls[-10:]) or "none"
                    raise ConditionTimeout(
                        f"condition not met within {timeout}s (last lookup error: {last_error!r};"
                        f" last calls: {recent})"
                    )
                self._cond.wait(remaining)

    def record(self, call: Call) -> None:
        """Append a call to the log (the server does this for every request)."""
        with self._change():
            self._calls.append(call)

    def calls(self, method: str | None = None) -> list[Call]:
        """Calls received so far, oldest first, optionally only one method's."""
        with self._cond:
            return [copy.deepcopy(c) for c in self._calls if method in (None, c.method)]

    # -- people -----------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str | None = None,
        *,
        email: str = "",
        team_id: str = "",
    ) -> User:
        """Add (or replace) a member; ``team_id`` makes them a guest of another organisation."""
        user = User(
            user_id,
            name,
            real_name or name.title(),
            email or f"{name}@example.com",
            team_id=team_id,
        )
        with self._change():
            self._users[user_id] = user
        return user

    def add_usergroup(self, group_id: str, handle: str, users: Sequence[str]) -> Usergroup:
        """Add (or replace) a user group ``S...`` with these member ids."""
        group = Usergroup(group_id, handle, handle.replace("-", " ").title(), tuple(users))
        with self._change():
            self._groups[group_id] = group
        return group

    def change_usergroup_members(
        self, group_id: str, users: Sequence[str]
    ) -> tuple[Usergroup, list[str], list[str]]:
        """Give the existing user group ``group_id`` these members; the group, and who was
        added and removed (what ``subteam_members_changed`` reports)."""
        with self._change():
            old = self._groups.get(group_id)
            if old is None:
                raise ValueError(f"no user group {group_id!r} in the sandbox: add_usergroup it")
            new = replace(old, users=tuple(users))
            self._groups[group_id] = new
        added = [u for u in new.users if u not in old.users]
        return new, added, [u for u in old.users if u not in new.users]

    def user(self, user_id: str) -> User | None:
        """The member with this id, or None."""
        with self._cond:
            return self._users.get(user_id)

    def user_by_name(self, name: str) -> User | None:
        """The member whose handle or real name is ``name``, or None."""
        with self._cond:
            return next((u for u in self._users.values() if name in (u.name, u.real_name)), None)

    def user_id(self, ref: str) -> str:
        """``ref`` if it is not a known handle or real name, else that member's id."""
        with self._cond:
            if ref in self._users:
                return ref
            user = self.user_by_name(ref)
            return user.id if user else ref

    def names(self) -> dict[str, str]:
        """How mentions read: member ids to handles, channel ids to names, groups to handles."""
        with self._cond:
            names = self._conversations.channel_names()
            names.update((g.id, g.handle) for g in self._groups.values())
            names.update((u.id, u.name) for u in self._users.values())
            return names

    def usergroups(self) -> list[Usergroup]:
        """Every user group."""
        with self._cond:
            return list(self._groups.values())

    def require_user(self, user_id: str | None) -> User:
        """The member, or ``ApiFailure("user_not_found")``."""
        user = self.user(user_id or "")
        if user is None:
            raise ApiFailure("user_not_found")
        return user

    # -- conversations and messages ---------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        private: bool = False,
        members: Sequence[str] = (),
    ) -> Channel:
        """Create a channel (no-op if it exists) and return it. A ``private`` one has
        ``members`` (ids or handles) and the bot, which was invited to post there."""
        with self._change():
            joined = {self.user_id(m) for m in members} | {self.bot_user.id}
            self._conversations.add_channel(
                channel_id, name, private=private, members=tuple(sorted(joined))
            )
        return self.channel(channel_id)

    def open_conversation(self, user_ids: Sequence[str]) -> str:
        """The DM (one user) or group DM (several) with these users, created if needed."""
        with self._change():
            members = tuple(sorted({self.require_user(u).id for u in user_ids}))
            return self._conversations.open(members)

    def resolve_channel(self, ref: str, *, create: bool, allow_user: bool = True) -> str:
        """Map a ``channel`` argument (id, ``#name``, name or user id) to a conversation id.

        Raises:
            ApiFailure: ``channel_not_found``.
        """
        with self._change():
            found = self._conversations.find(ref)
            if found is not None:
                return found
            if allow_user and ref[:1] in ("U", "W") and ref in self._users:
                return self.open_conversation([ref])
            if create and ref[:1] in ("C", "G") and ref[1:].isalnum() and ref.isupper():
                self.add_channel(ref)
                return ref
            raise ApiFailure("channel_not_found")

    def post_message(
        self,
        channel_id: str,
        text: str,
        blocks: list[JsonDict],
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        user: str | None = None,
        metadata: JsonDict | None = None,
    ) -> Message:
        """Store a new message (a thread reply when ``thread_ts`` is given)."""
        with self._change():
            return self._conversations.post(
                channel_id,
                text,
                blocks,
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                user=user or self.bot_user.id,
                bot_id=None if user else self.bot_id,
                metadata=metadata,
            )

    def update_message(
        self, channel_id: str, ts: str, text: str | None, blocks: list[JsonDict] | None
    ) -> Message:
        """Change a message; omitted text or blocks stay as they were."""
        with self._change():
            return self._conversations.update(channel_id, ts, text, blocks)

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Remove a message."""
        with self._change():
            self._conversations.delete(channel_id, ts)

    def post_ephemeral(
        self, channel_id: str, user: str, text: str, blocks: list[JsonDict], thread_ts: str | None
    ) -> EphemeralMessage:
        """Show a message to one user only."""
        with self._change():
            return self._conversations.post_ephemeral(channel_id, user, text, blocks, thread_ts)

    def change_ephemeral(
        self, user: str, ts: str, text: str | None, blocks: list[JsonDict] | None
    ) -> None:
        """Replace (or, with ``text`` and ``blocks`` None, delete) an ephemeral message."""
        with self._change():
            self._conversations.change_ephemeral(user, ts, text, blocks)

    # -- triggers and response_urls ---------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        """A new trigger_id for an interaction by ``user``."""
        with self._change():
            return self._triggers.issue_trigger(user, self.clock())

    def exchange_trigger(self, trigger_id: str | None) -> str:
        """Use a trigger_id once and return its user.

        Raises:
            ApiFailure: ``expired_trigger_id`` (unknown or too old) or ``exchanged_trigger_id``.
        """
        with self._change():
            return self._triggers.exchange_trigger(trigger_id, self.clock(), self.trigger_ttl)

    def issue_response_url(
        self, user: str, channel: str, message_ts: str | None = None, *, ephemeral: bool = False
    ) -> str:
        """Register a response_url and return its id (the path is ``/response/<id>``)."""
        with self._change():
            return self._triggers.issue_response_url(
                user, channel, message_ts, ephemeral, self.clock()
            )

    def use_response_url(self, url_id: str) -> ResponseUrl:
        """Count one use of a response_url (5 uses within 30 minutes)."""
        with self._change():
            return self._triggers.use_response_url(url_id, self.clock())

    # -- views (rules in .views) -----------------------------------------------------------

    def open_modal(self, user: str, payload: JsonDict, *, push: bool = False) -> JsonDict:
        """Open a modal for ``user`` (replacing any stack), or push one onto the stack."""
        with self._change():
            return self._views.open_modal(user, payload, push=push)

    @contextmanager
    def submitting(self, view_id: str) -> Iterator[None]:
        """While a submission of ``view_id`` waits for the app's answer and that answer is
        applied, ``views.update`` calls on the view wait: Slack applies the answer to a
        submission before later calls about the same view."""
        with self._change():
            self._submitting[view_id] = self._submitting.get(view_id, 0) + 1
        try:
            yield
        finally:
            with self._change():
                self._submitting[view_id] -= 1
                if not self._submitting[view_id]:
                    del self._submitting[view_id]

    def update_view(
        self,
        payload: JsonDict,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash_: str | None = None,
        answering: bool = False,
    ) -> JsonDict:
        """Replace a modal or Home view in place (``not_found``, ``hash_conflict``).

        An update of a view whose submission is in flight waits (up to
        ``SUBMISSION_WAIT`` seconds) until the app's answer to it has been applied, except
        the update that is that answer (``answering``).
        """
        with self._change():
            if view_id and not answering:
                self._cond.wait_for(lambda: view_id not in self._submitting, SUBMISSION_WAIT)
            return self._views.update(
                payload, view_id=view_id, external_id=external_id, hash_=hash_
            )

    def publish_home(self, user: str, payload: JsonDict, hash_: str | None = None) -> JsonDict:
        """Publish ``user``'s Home tab view."""
        with self._change():
            return self._views.publish_home(user, payload, hash_)

    def close_views(self, user: str, *, all_views: bool = False) -> None:
        """Pop the top modal view of ``user`` (or the whole stack)."""
        with self._change():
            self._views.close(user, all_views=all_views)

    def set_view_state(self, view_id: str, values: StateValues) -> None:
        """Remember what the user entered into a view (kept while it stays open)."""
        with self._change():
            self._views.set_state(view_id, values)

    # -- inspection -------------------------------------------------------------------------

    def channel(self, ref: str) -> Channel:
        """A snapshot of a conversation by id, ``#name``/name, or user (their DM with the bot).

        Unknown conversations give an empty Channel, so ``wait_for`` predicates can ask early.
        """
        with self._cond:
            return self._conversations.snapshot(ref, self.user_id(ref))

    def ephemeral(self, user: str) -> list[EphemeralMessage]:
        """Ephemeral messages ``user`` (id or handle) can currently see, oldest first."""
        with self._cond:
            return self._conversations.ephemeral(self.user_id(user))

    def view_stack(self, user: str) -> list[OpenView]:
        """``user``'s (id or handle) open modal views, root first."""
        with self._cond:
            uid = self.user_id(user)
            return [OpenView(uid, v, i) for i, v in enumerate(self._views.stack(uid))]

    def open_view(self, user: str) -> OpenView | None:
        """The modal view ``user`` (id or handle) sees on top, or None."""
        stack = self.view_stack(user)
        return stack[-1] if stack else None

    def home_view(self, user: str) -> OpenView | None:
        """``user``'s (id or handle) published Home tab, or None."""
        with self._cond:
            uid = self.user_id(user)
            home = self._views.home(uid)
            return OpenView(uid, home) if home else None
