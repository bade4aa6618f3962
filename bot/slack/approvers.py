"""Slack's side of who may act: user group membership for the backend's rules (cached), the
people a rule names (to message, or to count against a quorum), the acting person as an
``Actor``, and refusals in words with mentions."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Action, Actor, Pause, Refusal, Run, Via
from signoff.bot.errors import MembersUnreadable
from signoff.bot.slack.messages import who

logger = logging.getLogger(__name__)

#: usergroups.users.list is Tier 2, so members are cached. A change Slack tells us of
#: (``subteam_members_changed``, ``subteam_updated``) drops the entry at once in the process
#: that gets the event; this bounds how stale the others (and a missed event) can be.
GROUP_TTL_SECONDS = 60.0
#: how long members read before are still used while Slack refuses to read them again (a
#: rate limit, say); past it a group counts as empty (nobody may answer through it) until
#: a read works: a removal that cannot be checked is not trusted for ever
GROUP_STALE_LIMIT_SECONDS = 300.0
#: what Slack answers for a user group that is not there (deleted, or disabled): an
#: answer, not a failure to read one
GONE_ERRORS = frozenset({"no_such_subteam"})
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
#: at most this many people get a Home refresh or a direct message per event
MAX_PEOPLE = 50
#: Slack user and group ids inside an backend's rule text
_ID = re.compile(r"\b[UWS][A-Z0-9]{2,}\b")
#: the engine's refusal of someone who reassigned a decision: who, and to whom
#: the engine's refusal of someone who answered already: their id, first
_ANSWERED = re.compile(r"^(\S+) (?:has )?already answered")
_HANDED = re.compile(r"(\S+) handed it to (\S+), so the decision is no longer theirs")
#: the engine's refusal to hand a decision to whoever started its run: their id
_STARTER = re.compile(r"^(\S+) started it, and the person who started a run may not answer")
#: control characters (NUL, newlines, ESC, ...), line separators and the characters that
#: reorder bidirectional text, which the engine refuses in names: they could forge lines
#: in a run's trail as a terminal shows it. Also lone surrogates (JSON's \ud800), which no
#: database stores: the person's answer failed as it was recorded.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


class Approvers:
    """Slack user group membership, cached; installed on the backend as its group directory."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        #: how many times each group was forgotten: a read that overlapped a change
        #: (``forget``) may hold the members from before it, and is not kept
        self._changes: dict[str, int] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        """``group``'s members; none while Slack will not say and nothing read before may
        stand in (see ``groups_of`` for the rule that must not take that for "nobody")."""
        read = self._read(group)
        return read if isinstance(read, frozenset) else frozenset()

    def _read(self, group: str) -> frozenset[str] | str:
        """``group``'s members, or Slack's error when it would not say and no members read
        before may stand in."""
        with self._lock:
            cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_TTL_SECONDS:
            return cached[1]
        for _ in range(3):
            with self._lock:
                changes = self._changes.get(group, 0)
            began = time.monotonic()
            try:
                found = self.client.usergroups_users_list(usergroup=group)
            except SlackApiError as exc:
                return self._unread(group, cached, str(exc.response.get("error") or exc))
            except OSError as exc:  # unreachable past the client's retries; a timeout
                return self._unread(group, cached, str(exc) or type(exc).__name__)
            users = frozenset(found.get("users") or [])
            with self._lock:
                if self._changes.get(group, 0) == changes:
                    self._groups[group] = (began, users)
                    return users
            # Slack said the group changed while it was being read: read it again.
        return users

    def _unread(
        self, group: str, cached: tuple[float, frozenset[str]] | None, error: str
    ) -> frozenset[str] | str:
        """The members to go by when Slack refuses to read ``group``: those read last, for
        a while; after that (or when none were read), Slack's ``error``. A group Slack
        says is not there (deleted, disabled) has no members."""
        error = error[:100]
        stale = cached is not None and time.monotonic() - cached[0] >= GROUP_STALE_LIMIT_SECONDS
        logger.warning(
            "could not read the members of user group %s (%s)%s",
            group,
            error,
            "; nobody counts as a member until a read works" if stale else "",
            extra={"action": "usergroup_failed", "group": group, "error": error},
        )
        # Not cached: a passing failure must not lock the group out for a whole TTL, nor a
        # group made a moment later (Slack answers "no_such_subteam" till then).
        if cached is not None and not stale:
            return cached[1]
        return frozenset() if error in GONE_ERRORS else error

    def forget(self, group: str) -> None:
        """Drop what is cached about ``group``: Slack said its members changed."""
        with self._lock:
            self._groups.pop(group, None)
            self._changes[group] = self._changes.get(group, 0) + 1

    def groups_of(self, actor_id: str, candidates: Collection[str]) -> set[str]:
        """The Slack user groups among ``candidates`` that ``actor_id`` belongs to (the
        backend's ``GroupDirectory``).

        Raises:
            MembersUnreadable: ``actor_id`` is in none of the groups Slack said the members
                of, and Slack would not say for some other (a rate limit, an outage; a
                group it says is not there has no members): a rule must not refuse them
                for that, nor record a refusal. They are told to try again.
        """
        found: set[str] = set()
        unread: dict[str, str] = {}
        for group in sorted(g for g in candidates if _GROUP.match(g)):
            read = self._read(group)
            if isinstance(read, str):
                unread[group] = read
            elif actor_id in read:
                found.add(group)
        if unread and not found:
            raise MembersUnreadable(tuple(unread), "; ".join(sorted(set(unread.values()))))
        return found

    def people(self, principals: Iterable[str]) -> list[str]:
        """User ids named, with user groups expanded to their members (capped)."""
        found: list[str] = []
        for principal in principals:
            members = self.members(principal) if _GROUP.match(principal) else {principal}
            found += [m for m in sorted(members) if _USER.match(m) and m not in found]
        return found[:MAX_PEOPLE]

    def short_of_quorum(self, run: Run, pause: Pause) -> list[str] | None:
        """Everyone who may answer ``pause`` (its approvers, user groups read from Slack,
        and those its escalation will add), when they are fewer than its quorum needs;
        None when they are enough, or cannot be counted (anyone may answer; a user group
        Slack shows empty, which may be a failed read)."""
        if pause.quorum <= 1 or not pause.approvers:
            return None
        principals = (*pause.approvers, *(pause.escalate_to if pause.escalate_at else ()))
        people: set[str] = set()
        for principal in principals:
            if _GROUP.match(principal):
                members = self.members(principal)
                if not members:
                    return None
                people |= members
            else:
                people.add(principal)
        if pause.forbid_starter and run.started_by:
            people.discard(run.started_by)
        return sorted(people) if len(people) < pause.quorum else None


def register(app: App, groups: Approvers) -> None:
    """Forget a user group's cached members as soon as Slack says they changed, so that
    someone removed from an approving group cannot answer for the rest of the TTL."""

    @app.event("subteam_members_changed")
    def members_changed(event: dict[str, Any]) -> None:
        _changed(groups, event.get("subteam_id"))

    @app.event("subteam_updated")
    def updated(event: dict[str, Any]) -> None:
        # Also sent when a group is disabled, which empties it for our purposes.
        _changed(groups, (event.get("subteam") or {}).get("id"))


def _changed(groups: Approvers, group: object) -> None:
    if isinstance(group, str) and _GROUP.match(group):
        groups.forget(group)
        logger.info(
            "user group changed; members read again when next needed",
            extra={"action": "usergroup_changed", "group": group},
        )


#: the longest display name an actor carries (what the audit trail stores)
MAX_NAME = 200


def slack_actor(user: Mapping[str, Any]) -> Actor:
    """The person in a payload's ``user`` (or a slash command's ``user_id``/``user_name``)."""
    user_id = str(user.get("id") or user.get("user_id"))
    name = user.get("name") or user.get("username") or user.get("user_name")
    # The name is only shown beside the id: as much of it as the audit trail keeps, on one
    # line (a display name is its owner's to choose; refusing it would lock them out).
    shown = _CONTROL.sub("", str(name))[:MAX_NAME].strip() if name else None
    return Actor(user_id, name=shown or None, via=Via.SLACK)


def refusal_text(
    action: Action,
    actor: Actor,
    run: Run | None,
    refusal: Refusal,
    who: Callable[[str | None], str] = who,
) -> str:
    """What a refused person is told (privately): the rule, with people as mentions, or as
    ``who`` shows them (by name, where Slack shows text as it is: a modal's field error)."""
    started = run is not None and actor.id == run.started_by
    if action is Action.ANSWER and started and "started a run" in refusal.reason:
        return "You started this run, so someone else has to answer it."
    answered = _ANSWERED.match(refusal.reason)
    if answered is not None and answered.group(1) != actor.id:
        # Someone else: the person the decision was to be handed to.
        return f"{who(answered.group(1))} has already answered this; hand it to someone else."
    if action is Action.REASSIGN and answered is not None:
        return "You already answered this, so there is no decision of yours left to hand over."
    if answered is not None:
        return "You already answered this; it needs answers from different people."
    starter = _STARTER.match(refusal.reason)
    if action is Action.REASSIGN and starter is not None:
        # Not the sender's fault: the person chosen may not answer it.
        return (
            f"{who(starter.group(1))} started this run, so they may not answer it; "
            "hand it to someone else."
        )
    handed = _HANDED.search(refusal.reason)
    if handed is not None and handed.group(1) == actor.id:
        return f"You handed this to {who(handed.group(2))}, so it is no longer yours to decide."
    if action is Action.ANSWER and refusal.allowed:
        return "Only " + ", ".join(who(p) for p in refusal.allowed) + " may answer this."
    reason = _ID.sub(lambda m: who(m.group(0)), refusal.reason)
    return f"You may not {action.value} this: {reason}."
