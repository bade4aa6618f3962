"""What a pause or suspend call asks for: its options checked, its key given at call time,
and the pause it stands for (the one stored by an earlier execution, on a re-run, or a
new one). ``engine.waiting`` stores that pause and waits on it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from signoff.engine.actors import checked_ids
from signoff.engine.context import RunContext
from signoff.engine.errors import FlowChanged
from signoff.engine.input import RunInput, run_input_from_type
from signoff.engine.input_schema import input_schema
from signoff.engine.runs import Pause, PauseStatus
from signoff.engine.serialization import storable_text

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


@dataclass
class PauseRequest:
    """One pause or suspend call: the run it is in, its key and model, and the pause it
    asks for (``is_new``: not stored yet; otherwise the one a re-run takes up again)."""

    ctx: RunContext
    key: str
    model: type[RunInput] | None
    timeout: float | None
    pause: Pause
    is_new: bool
    #: None: the flow gets the answer itself; a number: it gets ``Answers``
    quorum: int | None = None


@dataclass(frozen=True)
class Decision:
    """How a pause is decided: by whom, how many, and what happens if nobody does."""

    approvers: Sequence[str] | None = None
    forbid_starter: bool | None = None
    quorum: int | None = None
    veto: str | None = None
    escalate_after: float | None = None
    escalate_to: Sequence[str] = ()
    notify: str = "channel"
    confirm: bool | None = None

    def check(self, model: type[RunInput] | None) -> None:
        """Raise ValueError naming what is wrong with these options for ``model``."""
        if self.approvers is not None and not checked_ids("approvers", self.approvers):
            # Read as "anyone" it would drop the flow's own list; read as "the flow's"
            # it would ignore what was written. Either way more likely a mistake.
            raise ValueError(
                "approvers is empty: name who may answer, or leave it out for the flow's approvers"
            )
        checked_ids("escalate_to", self.escalate_to)
        if self.quorum is not None and (
            isinstance(self.quorum, bool)
            or not isinstance(self.quorum, int)
            or not 1 <= self.quorum <= MAX_QUORUM
        ):
            raise ValueError(
                f"quorum must be a whole number of people, from 1 up to {MAX_QUORUM:,} "
                f"(got {self.quorum!r:.60})"
            )
        if self.veto is not None:
            if self.quorum is None:
                raise ValueError("veto only applies to a pause with a quorum")
            fields = model.model_fields if model is not None else {}
            if self.veto not in fields or fields[self.veto].annotation is not bool:
                raise ValueError(
                    f"veto={self.veto!r} must name a bool field of the input model "
                    f"(fields: {', '.join(fields) or 'none'})"
                )
        if self.escalate_after is not None:
            check_seconds("escalate_after", self.escalate_after, zero_allowed=False)
            if not self.escalate_to:
                raise ValueError("escalate_after needs escalate_to: who to add as approvers")
        elif self.escalate_to:
            raise ValueError("escalate_to needs escalate_after: when to add them")
        if self.notify not in NOTIFY:
            raise ValueError(f"notify must be one of {', '.join(NOTIFY)} (got {self.notify!r})")


#: the most people a pause may wait for: more is a mistake, and past 2**31 - 1 PostgreSQL
#: cannot store it at all (SQLite can, so the mistake would pass there unnoticed)
MAX_QUORUM = 1000

#: where a pause asks: the run's thread only, or also each approver directly
NOTIFY = ("channel", "dm")


def prepare_call(
    ctx: RunContext,
    wait_for_input: Any,
    timeout: float | None,
    key: str | None,
    decision: Decision,
) -> tuple[str, type[RunInput] | None]:
    """Check the call's options and give it its key (at call time, in call order)."""
    check_arguments(timeout, key)
    model = run_input_from_type(wait_for_input) if wait_for_input is not None else None
    decision.check(model)
    escalate_after = decision.escalate_after
    if escalate_after is not None and timeout is not None and escalate_after >= timeout:
        # Never made: the pause times out first (and the approvers would never be added).
        raise ValueError(
            f"escalate_after ({escalate_after:g} s) must be less than timeout "
            f"({timeout:g} s): the pause would time out before anyone was added"
        )
    return ctx.next_pause_key(key), model


def pause_request(
    ctx: RunContext,
    key: str,
    model: type[RunInput] | None,
    timeout: float | None,
    suspend: bool,
    decision: Decision,
) -> PauseRequest:
    """The pause this call asks for: the stored one on a re-run, else a new one."""
    approvers, forbid_starter = decision.approvers, decision.forbid_starter
    store = ctx.engine.store
    # The first pause of an execution with nothing stored: no pause to take up again, and
    # no rejected answer to start from. Otherwise both are looked up.
    first = ctx.fresh and ctx.pause_calls == 1
    existing = None if first else store.get_pause(ctx.run_id, key)
    schema = input_schema(model) if model is not None else None
    title = schema.get("title") if schema else None
    if existing is not None:
        if existing.status in _ENDED_UNANSWERED and ctx.asked_again(key):
            raise _asked_again(key, existing)
        if (existing.schema is None, existing.title) != (schema is None, title):
            raise FlowChanged(ctx.run_id, key, _asked(existing.title), _asked(title))
        return PauseRequest(ctx, key, model, timeout, existing, False, decision.quorum)
    initial: dict[str, Any] = {}
    if model is not None and not first:
        # Asking again right after the flow refused an answer to the same model: start from
        # what the person sent (the form fills the fields it lacks from the model's defaults
        # and with_initial_data). Any other pause starts from those alone.
        initial = store.refused_just_before(ctx.run_id, title) or {}
    now = store.clock()
    pause = Pause.waiting(
        ctx.run_id,
        key,
        now,
        timeout,
        suspend=suspend,
        schema=schema,
        title=title,
        description=(
            storable_text(model.signoff_description)
            if model is not None and model.signoff_description
            else None
        ),
        initial=initial,
        approvers=tuple(approvers if approvers is not None else ctx.flow.approvers),
        forbid_starter=forbid_starter if forbid_starter is not None else ctx.flow.forbid_starter,
        quorum=decision.quorum or 1,
        veto=decision.veto,
        escalate_at=(
            now + timedelta(seconds=decision.escalate_after)
            if decision.escalate_after is not None
            else None
        ),
        escalate_to=tuple(decision.escalate_to),
        notify=decision.notify,
        confirm=decision.confirm if decision.confirm is not None else ctx.flow.confirm,
    )
    return PauseRequest(ctx, key, model, timeout, pause, True, decision.quorum)


def _asked(title: str | None) -> str:
    return repr(title) if title else "no input (a plain pause)"


#: a pause that ended without an answer the flow can use: asking it again by its key
#: would only raise again (and a loop that catches that would spin without asking anyone)
_ENDED_UNANSWERED = (PauseStatus.REJECTED, PauseStatus.TIMED_OUT)


def _asked_again(key: str, pause: Pause) -> ValueError:
    """The error for a named pause asked again after it ended without a usable answer.

    As with Prefect, a key answered before returns its answer at once, which is how a
    re-run gets past it; an answer the model refused would be refused again at once.
    """
    why = (
        "nobody answered it in time"
        if pause.status is PauseStatus.TIMED_OUT
        else f"the answer to it was refused by {pause.title or 'the model'}"
    )
    return ValueError(
        f"pause key {key!r} was already asked in run {pause.run_id} and {why}, so it "
        "cannot be asked again: each question needs a key of its own (leave key out, and "
        f'each call gets the next number, or put the attempt in it: f"{key}-{{attempt}}")'
    )


#: the longest a pause may wait, or wait before escalating (100 years): a longer time is a
#: mistake, and an infinite one (or one past the year 9999) has no date to store
MAX_WAIT_SECONDS = 100 * 365 * 86_400


def check_seconds(
    name: str, value: object, *, zero_allowed: bool = True, otherwise: str = ""
) -> None:
    """Raise naming ``name`` unless ``value`` is a number of seconds a pause can wait;
    ``otherwise`` ends the message with what to give instead (``", or None to ..."``).

    Raises:
        TypeError: not a number (a bool, a string, ...).
        ValueError: negative (or zero, without ``zero_allowed``), infinite, NaN, or over
            ``MAX_WAIT_SECONDS``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds (got {value!r})")
    low = "from 0" if zero_allowed else "more than 0 and"
    if (
        # An int is finite, and math.isfinite refuses one too large for a float.
        (isinstance(value, float) and not math.isfinite(value))
        or value < 0
        or (value == 0 and not zero_allowed)
        or value > MAX_WAIT_SECONDS
    ):
        raise ValueError(
            f"{name} must be {low} up to {MAX_WAIT_SECONDS:,} seconds (100 years)"
            f"{otherwise} (got {value!r:.60})"
        )


def check_arguments(timeout: float | None, key: str | None) -> None:
    if timeout is not None:
        check_seconds("timeout", timeout, otherwise=", or None to wait with no deadline")
    if key is not None and not isinstance(key, str):
        # re's own error would not say which argument: "expected string ..., got 'int'"
        raise TypeError(f"pause key must be text (got {key!r:.80})")
    # An empty key is no key, as Prefect's ``key or str(counter)``: the call is numbered.
    if key and not _KEY.match(key):
        shown = repr(key) if len(key) <= 200 else f"{key[:80]!r}... ({len(key):,} characters)"
        raise ValueError(f"pause key {shown} must be 1-200 letters, digits, '-', '_', '.' or ':'")


__all__ = [
    "MAX_QUORUM",
    "MAX_WAIT_SECONDS",
    "NOTIFY",
    "Decision",
    "PauseRequest",
    "check_arguments",
    "check_seconds",
    "pause_request",
    "prepare_call",
]
