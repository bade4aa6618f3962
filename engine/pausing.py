"""``pause_flow_run`` and ``suspend_flow_run``: waiting for a person's input.

A pause keeps the flow where it is and blocks (or awaits) until the input is stored.
A suspend stores the run as suspended and unwinds it; once answered, a worker runs the
flow again from the start, and everything already done returns its stored result.

Each call gets a key: the ``key=`` given, or its position among the run's pause and
suspend calls ("1", "2", ...). A call whose key was already answered returns that
answer at once, which is how a re-run gets past the pauses it passed before.

``suspend_flow_run(flow_run_id=...)`` suspends another running run: the request is stored
with an event, and the run suspends at its next task call, flow call or pause, or where
it returns or raises if it meets none first (its "boundaries", as Prefect's); that request
and its honouring are ``engine.suspend_requests``.

Every function has an explicit async twin (``apause_flow_run``, ``asuspend_flow_run``,
``engine.aresume_flow_run``), as Prefect has.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, Never, TypeVar, overload

from signoff.engine.asking import Decision, pause_request, prepare_call
from signoff.engine.context import RunContext, awaited_here, current_run, require_run
from signoff.engine.input import with_metadata
from signoff.engine.pause_outcomes import refuse_if_closed
from signoff.engine.quorum import Answers
from signoff.engine.runs import run_id_text
from signoff.engine.suspend_requests import request_suspend, suspend_at_boundary
from signoff.engine.waiting import (
    in_event_loop,
    pause_async,
    suspend_here,
    suspend_here_async,
    wait_for_answer,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Done:
    """A result that is already there, and may also be awaited.

    Prefect's functions return awaitables when called from async code, so code written for
    it says ``await suspend_flow_run(flow_run_id=...)``. The work is done by the call
    itself, so forgetting the ``await`` loses nothing.
    """

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator, as __await__ must be


async def _answered_async(ctx: RunContext, key: str, answer: Awaitable[Any]) -> Any:
    return with_metadata(await answer, ctx.run_id, key)


#: Prefect 2's pause options, which Prefect 3 (and Signoff) moved to ``suspend_flow_run``
_PREFECT2_PAUSE = {
    "reschedule": "to end the execution and run the flow again once answered, call "
    "suspend_flow_run",
    "flow_run_id": "to stop another run, call suspend_flow_run(flow_run_id=...)",
}


def _refuse_prefect2(name: str, options: dict[str, Any]) -> None:
    """Raise the TypeError Python would for an unknown keyword, saying what to call instead
    for Prefect 2's (whose code passes them, and would otherwise learn only that they are
    unexpected)."""
    for option in options:
        if option in _PREFECT2_PAUSE:
            raise TypeError(f"{name}({option}=...) is Prefect 2's; {_PREFECT2_PAUSE[option]}")
        raise TypeError(f"{name}() got an unexpected keyword argument {option!r}")


@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float | None = 3600,
    poll_interval: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: None = None,
    veto: None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
) -> T: ...


@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float | None = 3600,
    poll_interval: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: int,
    veto: str | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
) -> Answers[T]: ...


@overload
def pause_flow_run(
    wait_for_input: None = None,
    timeout: float | None = 3600,
    poll_interval: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: None = None,
    veto: None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
) -> None: ...


def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    poll_interval: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: int | None = None,
    veto: str | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
    **prefect2: Any,
) -> Any:
    """Wait, in this process, until someone answers; return their validated input.

    In a sync flow it blocks; in an async flow it returns an awaitable. Called inside a
    task it pauses the task's flow. ``wait_for_input`` is a ``RunInput`` subclass, any
    pydantic model, or a plain type such as ``int`` or ``Literal["yes", "no"]`` (then the
    bare value comes back). ``poll_interval`` is accepted for code written for Prefect and
    ignored: the answer wakes the flow, nothing polls.

    Who decides (ids of people or groups; see ``engine.permissions``):

    - ``approvers``, ``forbid_starter``: who may answer (default: the flow's settings).
    - ``quorum=N``: wait for N different permitted people; the call then returns
      ``Answers`` (every answer with who gave it) instead of one value. The same person
      answering twice is refused. ``veto="field"`` names a bool field of the model: an
      answer with it false ends the wait at once (``Answers.vetoed``).
    - ``escalate_after`` seconds without a decision adds ``escalate_to`` to the approvers
      (and the bot mentions them); the timer is durable and fires once across workers.
    - ``notify="dm"`` also asks each approver in a direct message.
    - ``confirm=True`` (default: the flow's ``confirm``) asks whoever answers to confirm.

    Example::

        @flow
        def get_shirt_order():
            order = pause_flow_run(wait_for_input=ShirtOrder, timeout=600)

    Raises:
        PauseTimeout: nobody answered within ``timeout`` seconds (the flow may catch it).
        pydantic.ValidationError: the model's own validators refused the answer; the
            refusal is stored, so asking again prefills what was sent.
        MissingContext: called outside a flow run (also a ``RuntimeError``).
        ValueError: an option is malformed, or a ``key`` is asked again after its answer
            was refused or it timed out (the message names it).
        TypeError: Prefect 2's ``reschedule`` or ``flow_run_id`` (named, with what to use).
    """
    del poll_interval  # see the docstring
    _refuse_prefect2("pause_flow_run", prefect2)
    ctx = require_run("pause_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = prepare_call(ctx, wait_for_input, timeout, key, decision)
    refuse_if_closed(ctx, key)
    request = (model, timeout, False, decision)
    if awaited_here(ctx):
        return _answered_async(ctx, key, pause_async(ctx, key, *request))
    if in_event_loop():
        # A sync task of an async flow: its wait holds the loop, and with it every other
        # coroutine there (an answer sent from that loop included) until it ends.
        logger.warning(
            "a sync task pauses its async flow: the event loop waits with it; make the "
            "task async to keep the loop running",
            extra={"action": "pause_blocks_loop", "run_id": ctx.run_id, "key": key},
        )
    return with_metadata(wait_for_answer(pause_request(ctx, key, *request)), ctx.run_id, key)


async def apause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    poll_interval: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: int | None = None,
    veto: str | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
    **prefect2: Never,
) -> Any:
    """``pause_flow_run`` as a coroutine, whatever kind of flow calls it."""
    del poll_interval
    _refuse_prefect2("apause_flow_run", prefect2)
    ctx = require_run("apause_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = prepare_call(ctx, wait_for_input, timeout, key, decision)
    refuse_if_closed(ctx, key)
    return await _answered_async(ctx, key, pause_async(ctx, key, model, timeout, False, decision))


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: str | uuid.UUID | None = None,
    timeout: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: int | None = None,
    veto: str | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
) -> Any:
    """Stop the run here, keeping no process, until someone answers.

    The run is stored as suspended and the flow unwinds. Once it is answered, a worker
    runs the flow again from the start with the same parameters: completed tasks return
    their stored results and this call returns the validated input. The options of who
    decides are those of ``pause_flow_run``.

    With ``flow_run_id`` (a run id, also as a ``uuid.UUID``; from anywhere, even outside a
    flow) it asks that running run to suspend at its next task call, flow call or pause (or
    where it returns or raises, if sooner), waiting for ``wait_for_input`` and decided as
    the options say, and returns ``None`` at once (awaitable in async code). Code between
    boundaries is not interrupted.

    Raises:
        UnstorableValue: a parameter or task result of the run cannot be stored, so the
            run could not be taken up again; nothing is suspended.
        CannotSuspend: the flow (or with ``flow_run_id``, that run's flow) was called from
            another flow (suspend the outer one), or ``flow_run_id`` names a run that is not
            running (also a ``RuntimeError``, as Prefect's).
        PauseTimeout: on a re-run that reaches a suspend whose timeout passed unanswered.
            (Nothing runs a suspended flow meanwhile: when its timeout passes, the run
            fails as TimedOut, as Prefect fails it.)
        pydantic.ValidationError: as for ``pause_flow_run``.
        MissingContext: called outside a flow run without ``flow_run_id``.
    """
    current = current_run.get()
    if flow_run_id is not None:
        flow_run_id = run_id_text(flow_run_id)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    if flow_run_id is not None and (current is None or current.run_id != flow_run_id):
        request_suspend(flow_run_id, wait_for_input, timeout, key, decision)
        return Done() if in_event_loop() else None
    ctx = require_run("suspend_flow_run()")
    suspend_at_boundary(ctx)
    key, model = prepare_call(ctx, wait_for_input, timeout, key, decision)
    refuse_if_closed(ctx, key)  # as a pause: the run stays for a worker, which asks again
    request = (model, timeout, True, decision)
    if awaited_here(ctx):
        return _answered_async(ctx, key, suspend_here_async(ctx, key, *request))
    return with_metadata(suspend_here(pause_request(ctx, key, *request)), ctx.run_id, key)


async def asuspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: str | uuid.UUID | None = None,
    timeout: float | None = None,
    key: str | None = None,
    *,
    approvers: Sequence[str] | None = None,
    forbid_starter: bool | None = None,
    quorum: int | None = None,
    veto: str | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
    notify: str = "channel",
    confirm: bool | None = None,
) -> Any:
    """``suspend_flow_run`` as a coroutine."""
    current = current_run.get()
    if flow_run_id is not None:
        flow_run_id = run_id_text(flow_run_id)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    if flow_run_id is not None and (current is None or current.run_id != flow_run_id):
        await asyncio.to_thread(
            request_suspend, flow_run_id, wait_for_input, timeout, key, decision
        )
        return None
    ctx = require_run("asuspend_flow_run()")
    suspend_at_boundary(ctx)
    key, model = prepare_call(ctx, wait_for_input, timeout, key, decision)
    refuse_if_closed(ctx, key)
    return await _answered_async(
        ctx, key, suspend_here_async(ctx, key, model, timeout, True, decision)
    )
