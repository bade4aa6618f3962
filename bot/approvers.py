"""Who may answer a pause: user ids, and members of Slack user groups (cached)."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.messages import who
from engine import Pause, Run

logger = logging.getLogger(__name__)

#: usergroups.users.list is Tier 2; membership rarely changes within a minute
GROUP_TTL_SECONDS = 60.0


class Approvers:
    """Checks a Slack user against a pause's approvers."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._groups.get(group)
        if cached and now - cached[0] < GROUP_TTL_SECONDS:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or [])
        except SlackApiError:
            # Not cached: a passing failure must not lock the group out for a whole TTL.
            logger.warning(
                "could not read user group", extra={"action": "usergroup_failed", "group": group}
            )
            return cached[1] if cached else frozenset()
        with self._lock:
            self._groups[group] = (now, users)
        return users

    def groups_of(self, user: str, pause: Pause) -> list[str]:
        """The pause's approver groups that ``user`` belongs to."""
        return [g for g in pause.approvers if g.startswith("S") and user in self.members(g)]

    def refusal(self, user: str, run: Run, pause: Pause) -> str | None:
        """Why ``user`` may not answer, or None if they may."""
        if pause.forbid_starter and run.started_by == user:
            return "You started this run, so someone else has to answer it."
        if pause.approvers and user not in pause.approvers and not self.groups_of(user, pause):
            return "Only " + ", ".join(who(p) for p in pause.approvers) + " may answer this."
        return None
