"""Which stored events another process must read at once: those a waiting flow needs.

Other processes read new events at a paced rate, to spare an idle one; an answer, a pause's
timeout or a cancellation may be what a flow waits for, so a commit that stores one says
so (PostgreSQL: at the end of its NOTIFY's payload; SQLite: in its wake-up datagram).
"""

from __future__ import annotations

from typing import Any

from signoff.engine.runs import EventKind, RunState

#: marks a pending event whose flow has it already (see ``StoreBase._emit``); not stored
HANDED_OVER = "handed_over"
#: the end of a NOTIFY's payload (``<origin> <urgency>``) when its events wake a waiting flow
PROMPT_NOTICE = "prompt"


def wakes_a_flow(event: dict[str, Any]) -> bool:
    """Whether a flow may be waiting on this (pending) event: an answer, a pause's timeout,
    a cancellation. Other processes read such events at once, not at their paced rate."""
    if event.get(HANDED_OVER):
        return False
    kind = event["kind"]
    if kind == EventKind.STATE_CHANGED.value:
        return bool(event["data"].get("state") == RunState.CANCELLED.value)
    return kind in (EventKind.INPUT_RECEIVED.value, EventKind.PAUSE_TIMED_OUT.value)


__all__ = ["HANDED_OVER", "PROMPT_NOTICE", "wakes_a_flow"]
