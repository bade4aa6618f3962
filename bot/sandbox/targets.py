"""What a sandbox user points at: a message, an ephemeral message or a view, read again
as the workspace holds it now, and the element in it that a click names."""

from __future__ import annotations

from signoff.bot.sandbox.errors import NothingToInteractWith
from signoff.bot.sandbox.records import EphemeralMessage, JsonDict, Message, OpenView
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["Target", "as_it_is_now", "find_element"]

#: what a click or a submission acts on
Target = Message | EphemeralMessage | OpenView


def as_it_is_now(ws: Workspace, target: Target) -> tuple[list[JsonDict], Target]:
    """``target`` and its blocks as the workspace holds them now (the app may have updated
    it since the test read it), as Slack's client shows the current message or view."""
    fresh: Target | None
    if isinstance(target, Message):
        fresh = ws.channel(target.channel).message(target.ts)
    elif isinstance(target, EphemeralMessage):
        fresh = next((m for m in ws.ephemeral(target.user) if m.ts == target.ts), None)
    else:
        views = [*ws.view_stack(target.user), ws.home_view(target.user)]
        fresh = next((v for v in views if v is not None and v.id == target.id), None)
    if fresh is None:
        raise NothingToInteractWith(f"{type(target).__name__} is gone from the workspace")
    return fresh.blocks, fresh


def find_element(
    blocks: list[JsonDict], action_id: str, value: object, block_id: str | None
) -> tuple[JsonDict, JsonDict]:
    """The block and element a click names by ``action_id`` (and ``block_id``); among
    buttons sharing it, the one whose value is ``value``."""
    found: list[tuple[JsonDict, JsonDict]] = []
    for block in blocks:
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        elements += [block[key] for key in ("accessory", "element") if key in block]
        found += [
            (block, el)
            for el in elements
            if isinstance(el, dict)
            and el.get("action_id") == action_id
            and block_id in (None, block.get("block_id"))
        ]
    buttons = [f for f in found if f[1].get("type") == "button"]
    if value is not None and buttons:
        found = [f for f in buttons if f[1].get("value") == value]
    if not found:
        known = sorted(
            {str(el.get("action_id")) for b in blocks for el in b.get("elements", [])}
            | {str(b[k].get("action_id")) for b in blocks for k in ("accessory",) if k in b}
        )
        raise NothingToInteractWith(
            f"no element with action_id={action_id!r} value={value!r}; there are: {known}"
        )
    return found[0]
