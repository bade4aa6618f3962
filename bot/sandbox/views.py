"""Modal view stacks and Home tabs, per user, with Slack's view rules.

Not thread-safe on its own: :class:`~bot.sandbox.workspace.Workspace` calls it under its lock.

Rules kept: at most 3 views in a modal stack (``push_limit_reached``); ``views.update`` keeps
the view id, changes the hash, checks a given hash (``hash_conflict``) and keeps what the user
entered into inputs whose ``block_id`` and ``action_id`` did not change; ``external_id`` is
unique (``duplicate_external_id``); unknown ids are ``not_found``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from signoff.bot.sandbox.errors import ApiFailure
from signoff.bot.sandbox.forms import StateValues, stateful_elements
from signoff.bot.sandbox.identifiers import IdSource, fill_ids
from signoff.bot.sandbox.records import JsonDict

__all__ = ["MAX_STACK", "AppIdentity", "ViewStore"]

#: Views one modal can hold (the opened one plus two pushes).
MAX_STACK = 3


@dataclass(frozen=True)
class AppIdentity:
    """The team and app ids stamped on every stored view."""

    team_id: str
    app_id: str
    bot_id: str


class ViewStore:
    """Every user's modal stack (root first) and Home tab view."""

    def __init__(self, ids: IdSource, identity: AppIdentity) -> None:
        self._ids = ids
        self._identity = identity
        self._stacks: dict[str, list[JsonDict]] = {}
        self._homes: dict[str, JsonDict] = {}

    def _all(self) -> Iterator[JsonDict]:
        for stack in self._stacks.values():
            yield from stack
        yield from self._homes.values()

    def _build(self, payload: JsonDict, view_id: str, old: JsonDict | None) -> JsonDict:
        """The view object Slack stores and returns for ``payload``."""
        blocks = fill_ids(payload.get("blocks", []))
        keep = {(block_id, action_id) for _, block_id, action_id, _el in stateful_elements(blocks)}
        old_values: StateValues = (old or {}).get("state", {}).get("values", {})
        values: StateValues = {}
        for block_id, actions in old_values.items():
            for action_id, value in actions.items():
                if (block_id, action_id) in keep:  # Slack keeps input when the ids are unchanged
                    values.setdefault(block_id, {})[action_id] = value
        external_id = payload.get("external_id") or ""
        if external_id and any(
            v.get("external_id") == external_id and v["id"] != view_id for v in self._all()
        ):
            raise ApiFailure("duplicate_external_id")
        identity = self._identity
        return {
            "id": view_id,
            "team_id": identity.team_id,
            "type": payload["type"],
            "blocks": blocks,
            "private_metadata": payload.get("private_metadata") or "",
            "callback_id": payload.get("callback_id") or "",
            "state": {"values": values},
            "hash": self._ids.view_hash(),
            "title": copy.deepcopy(payload.get("title")),
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "close": copy.deepcopy(payload.get("close")),
            "submit": copy.deepcopy(payload.get("submit")),
            "previous_view_id": (old or {}).get("previous_view_id"),
            "root_view_id": (old or {}).get("root_view_id") or view_id,
            "app_id": identity.app_id,
            "external_id": external_id,
            "app_installed_team_id": identity.team_id,
            "bot_id": identity.bot_id,
        }

    def open_modal(self, user: str, payload: JsonDict, *, push: bool = False) -> JsonDict:
        """Open a modal for ``user`` (replacing any stack), or push one onto the stack."""
        stack = self._stacks.get(user, []) if push else []
        if len(stack) >= MAX_STACK:
            raise ApiFailure("push_limit_reached")
        view = self._build(payload, self._ids.prefixed("V"), old=None)
        if stack:
            view["previous_view_id"] = stack[-1]["id"]
            view["root_view_id"] = stack[0]["id"]
        self._stacks[user] = [*stack, view]
        return copy.deepcopy(view)

    def update(
        self,
        payload: JsonDict,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash_: str | None = None,
    ) -> JsonDict:
        """Replace a modal or Home view in place (same id, new hash)."""
        for view in self._all():
            if (view_id and view["id"] == view_id) or (
                external_id and view.get("external_id") == external_id
            ):
                if hash_ and hash_ != view["hash"]:
                    raise ApiFailure("hash_conflict")
                new = self._build(payload, view["id"], old=view)
                view.clear()
                view.update(new)
                return copy.deepcopy(new)
        raise ApiFailure("not_found")

    def publish_home(self, user: str, payload: JsonDict, hash_: str | None = None) -> JsonDict:
        """Publish ``user``'s Home tab view."""
        old = self._homes.get(user)
        if old is not None and hash_ and hash_ != old["hash"]:
            raise ApiFailure("hash_conflict")
        view_id = old["id"] if old else self._ids.prefixed("V")
        self._homes[user] = self._build(payload, view_id, old=old)
        return copy.deepcopy(self._homes[user])

    def close(self, user: str, *, all_views: bool = False) -> None:
        """Pop ``user``'s top modal view, or the whole stack."""
        stack = self._stacks.get(user, [])
        self._stacks[user] = [] if all_views else stack[:-1]

    def set_state(self, view_id: str, values: StateValues) -> None:
        """Remember what the user entered into a view while it stays open."""
        for view in self._all():
            if view["id"] == view_id:
                view["state"] = {"values": copy.deepcopy(values)}

    def stack(self, user: str) -> list[JsonDict]:
        """Copies of ``user``'s modal views, root first."""
        return copy.deepcopy(self._stacks.get(user, []))

    def home(self, user: str) -> JsonDict | None:
        """A copy of ``user``'s Home view, or None."""
        home = self._homes.get(user)
        return copy.deepcopy(home) if home else None
