"""``pause_flow_run`` and ``suspend_flow_run``: waiting for a person's input.

A pause keeps the flow where it is and blocks (or awaits) until the input is stored.
A suspend stores the run as suspended and unwinds it; once answered, a worker runs the
flow again from the start, and everything already done returns its stored result.

Each call gets a key: the ``key=`` given, or its position among the run's pause and
suspend calls ("1", "2", ...). A call whose key was already answered returns that
answer at once, which is how a re-run gets past the pauses it passed before.

``suspend_flow_run(flow_run_id=...)`` suspends another running run: the request is stored
with an event, and the run suspends at its next task call or pause (its "boundary"). Its
key is the ``key=`` given or a fresh ``suspend-<hex>``, outside the counter, so the run's
own keys do not shift on the re-run.

Every function has an explicit async twin (``apause_flow_run``, ``asuspend_flow_run``,
``engine.aresume_flow_run``), as Prefect has.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

import pydantic

from signoff.engine.context import RunContext, current_run, require_run
from signoff.engine.errors import CannotSuspend, InvalidTransition, PauseTimeout, UnstorableValue
from signoff.engine.input import RunInput, load_answer, run_input_from_type
from signoff.engine.input_schema import input_schema
from signoff.engine.quorum import Answered, Answers
from signoff.engine.runs import GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.signals import Cancel, Suspend
from signoff.engine.validation import model_errors
from signoff.engine.waiters import LoopWaiter, ThreadWaiter

T = TypeVar("T")
logger = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
#: run metadata under which a request to suspend at the next boundary is kept (+ its key)
SUSPEND_REQUEST = "signoff.suspend:"
#: the answer is not there yet
_WAITING = object()


@dataclass
class _Request:
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
        if self.quorum is not None and (
            isinstance(self.quorum, bool) or not isinstance(self.quorum, int) or self.quorum < 1
        ):
            raise ValueError(
                f"quorum must be a whole number of people, 1 or more (got {self.quorum!r})"
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
            if self.escalate_after <= 0:
                raise ValueError(f"escalate_after must be positive (got {self.escalate_after})")
            if not self.escalate_to:
                raise ValueError("escalate_after needs escalate_to: who to add as approvers")
        elif self.escalate_to:
            raise ValueError("escalate_to needs escalate_after: when to add them")
        if self.notify not in NOTIFY:
            raise ValueError(f"notify must be one of {', '.join(NOTIFY)} (got {self.notify!r})")


#: where a pause asks: the run's thread only, or also each approver directly
NOTIFY = ("channel", "dm")


def _prepare(
    ctx: RunContext,
    wait_for_input: Any,
    timeout: float | None,
    key: str | None,
    decision: Decision,
) -> tuple[str, type[RunInput] | None]:
    """Check the call's options and give it its key (at call time, in call order)."""
    _check_arguments(timeout, key)
    model = run_input_from_type(wait_for_input) if wait_for_input is not None else None
    decision.check(model)
    return ctx.next_pause_key(key), model


def _request(
    ctx: RunContext,
    key: str,
    model: type[RunInput] | None,
    timeout: float | None,
    suspend: bool,
    decision: Decision,
) -> _Request:
    """The pause this call asks for: the stored one on a re-run, else a new one."""
    approvers, forbid_starter = decision.approvers, decision.forbid_starter
    store = ctx.engine.store
    # The first pause of an execution with nothing stored: no pause to take up again, and
    # no rejected answer to start from. Otherwise both are looked up.
    first = ctx.fresh and ctx.pause_calls == 1
    existing = None if first else store.get_pause(ctx.run_id, key)
    if existing is not None:
        return _Request(ctx, key, model, timeout, existing, False, decision.quorum)
    schema = input_schema(model) if model is not None else None
    title = schema.get("title") if schema else None
    initial: dict[str, Any] = {}
    if model is not None and not first:
        # Asking again after a rejected answer: start from what the person sent.
        rejected = store.last_rejected(ctx.run_id, title)
        if rejected is not None and isinstance(rejected.response, dict):
            initial = dict(rejected.response)
    now = store.clock()
    pause = Pause(
        run_id=ctx.run_id,
        key=key,
        suspend=suspend,
        status=PauseStatus.WAITING,
        schema=schema,
        title=title,
        description=model.signoff_description if model is not None else None,
        initial=initial,
        approvers=tuple(approvers if approvers is not None else ctx.flow.approvers),
        forbid_starter=forbid_starter if forbid_starter is not None else ctx.flow.forbid_starter,
        created_at=now,
        deadline=now + timedelta(seconds=timeout) if timeout is not None else None,
        response=None,
        responder=None,
        answered_at=None,
        errors={},
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
    return _Request(ctx, key, model, timeout, pause, True, decision.quorum)


def _check_arguments(timeout: float | None, key: str | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must not be negative (got {timeout})")
    if key is not None and not _KEY.match(key):
        raise ValueError(f"pause key {key!r} must be 1-200 letters, digits, '-', '_', '.' or ':'")


def _open(req: _Request, owner: str | None) -> None:
    """Store the pause (or take it up again after a re-run) and set its timer."""
    engine, run_id = req.ctx.engine, req.ctx.run_id
    logs = req.ctx.take_logs()
    if req.is_new:
        engine.store.open_pause(req.pause, owner, logs)
    else:
        state = RunState.PAUSED if owner else RunState.SUSPENDED
        engine.store.transition(
            run_id,
            state,
            state.value.capitalize(),
            f"waiting for input {req.key!r}",
            expect=(RunState.RUNNING,),
            logs=logs,
            owner=owner,
        )
    if req.pause.deadline is not None:
        engine.timers.call_at(
            f"expire:{run_id}:{req.key}",
            req.pause.deadline,
            "signoff.engine.timers:expire_due_pauses",
        )
    if req.pause.escalate_at is not None and req.pause.escalated_at is None:
        engine.timers.call_at(
            f"escalate:{run_id}:{req.key}",
            req.pause.escalate_at,
            "signoff.engine.timers:escalate_due_pauses",
        )
    engine.notify()
    logger.info(
        "waiting for input",
        extra={
            "action": "run_suspended" if owner is None else "run_paused",
            "run_id": run_id,
            "key": req.key,
        },
    )


def _outcome(req: _Request, pause: Pause) -> Any:
    """What the waiting call returns or raises, given where its pause is now."""
    ctx = req.ctx
    if pause.status is PauseStatus.CANCELLED or ctx.engine.is_cancelled(ctx.run_id):
        raise Cancel(ctx.run_id)
    if pause.status is PauseStatus.WAITING:
        return _WAITING
    if pause.status is PauseStatus.TIMED_OUT:
        # The flow may catch this and go on, so the run is running again.
        ctx.engine.store.transition(
            ctx.run_id,
            RunState.RUNNING,
            "Running",
            f"no input for {req.key!r} in time",
            expect=(RunState.PAUSED, RunState.SUSPENDED),
            owner=ctx.engine.claim_ownership(),
        )
        raise PauseTimeout(ctx.run_id, req.key, req.timeout)
    try:
        value = _load(req, pause)
    except pydantic.ValidationError as exc:
        if ctx.engine.store.settle_pause(pause, False, model_errors(exc)):
            ctx.engine.notify()
        raise
    if ctx.engine.store.settle_pause(pause, accepted=True):
        ctx.engine.notify()
    return value


def _load(req: _Request, pause: Pause) -> Any:
    """The validated answer, or (with a quorum) every answer with who gave it."""
    if req.quorum is None:
        return load_answer(req.model, pause.response)
    answers = pause.answers or (
        # Answered before quorums were recorded per person: one answer, as stored.
        (GivenAnswer(pause.responder, pause.responder, None, pause.response, pause.created_at),)
    )
    vetoed = bool(
        pause.veto
        and any(isinstance(a.input, dict) and a.input.get(pause.veto) is False for a in answers)
    )
    return Answers(
        answers=tuple(
            Answered(load_answer(req.model, a.input), a.responder, a.name, a.via, a.at)
            for a in answers
        ),
        quorum=pause.quorum,
        vetoed=vetoed,
    )


def _handed_over(req: _Request, waiter: ThreadWaiter | LoopWaiter) -> Any:
    """The answer the resumer already validated in this process, or _WAITING."""
    if waiter.answer is None or req.quorum is not None:
        # A quorum's answers come back together, with who gave them: read from the store.
        return _WAITING
    if waiter.answer.error is not None:
        raise waiter.answer.error
    return waiter.answer.value


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _wait_sync(req: _Request) -> Any:
    engine, run_id = req.ctx.engine, req.ctx.run_id
    if not req.is_new:
        outcome = _outcome(req, req.pause)
        if outcome is not _WAITING:
            return outcome
    deadline = None if req.timeout is None else time.monotonic() + req.timeout
    waiter = ThreadWaiter(req.key, req.model)
    engine.waiters.add(run_id, waiter)  # before the pause is stored: no wake-up is missed
    try:
        _open(req, engine.claim_ownership())
        # The pause just stored waits: no need to read it back. The waiter was registered
        # before it was stored, so whatever answers it meanwhile has woken the waiter.
        pause: Pause | None = req.pause
        while True:
            # An answer validated in this process is handed over: nothing to read.
            outcome = _handed_over(req, waiter)
            if outcome is not _WAITING:
                return outcome
            if pause is None:
                pause = engine.store.get_pause(run_id, req.key)
                assert pause is not None
            outcome = _outcome(req, pause)
            if outcome is not _WAITING:
                return outcome
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                engine.store.expire_pause(run_id, req.key)
                engine.notify()
            else:
                waiter.wait(remaining)
            pause = None
    finally:
        engine.waiters.remove(run_id, waiter)


def _look(req: _Request) -> Any:
    """Read the pause again and judge where it is now."""
    pause = req.ctx.engine.store.get_pause(req.ctx.run_id, req.key)
    assert pause is not None
    return _outcome(req, pause)


def _expire(req: _Request) -> None:
    req.ctx.engine.store.expire_pause(req.ctx.run_id, req.key)
    req.ctx.engine.notify()


def _open_owned(req: _Request) -> None:
    _open(req, req.ctx.engine.claim_ownership())


async def _wait_async(req: _Request) -> Any:
    # Every store call is awaited on the engine's store threads: the loop never blocks.
    engine, run_id = req.ctx.engine, req.ctx.run_id
    offload = engine.store_threads.call
    if not req.is_new:
        outcome = await offload(_outcome, req, req.pause)
        if outcome is not _WAITING:
            return outcome
    deadline = None if req.timeout is None else time.monotonic() + req.timeout
    waiter = LoopWaiter(req.key, req.model)
    engine.waiters.add(run_id, waiter)
    try:
        await offload(_open_owned, req)
        # As in _wait_sync: the pause just stored waits, and the waiter hears of any change.
        if engine.is_cancelled(run_id):
            raise Cancel(run_id)
        while True:
            outcome = _handed_over(req, waiter)
            if outcome is not _WAITING:
                return outcome
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                await offload(_expire, req)
            else:
                await waiter.wait(remaining)
            outcome = _handed_over(req, waiter)
            if outcome is not _WAITING:
                return outcome
            outcome = await offload(_look, req)
            if outcome is not _WAITING:
                return outcome
    finally:
        engine.waiters.remove(run_id, waiter)


async def _pause_async(ctx: RunContext, key: str, *request: Any) -> Any:
    return await _wait_async(await ctx.engine.store_threads.call(_request, ctx, key, *request))


def _suspend(req: _Request) -> Any:
    if req.ctx.parent_run_id is not None:
        raise CannotSuspend(
            req.ctx.run_id,
            f"its flow {req.ctx.flow.name!r} was called from the flow of run "
            f"{req.ctx.parent_run_id}, and only that outermost run can be run again from the "
            "start; suspend in the outer flow, or use pause_flow_run here",
        )
    if not req.is_new:
        outcome = _outcome(req, req.pause)
        if outcome is not _WAITING:
            return outcome
    if req.ctx.unstorable:
        what, cause = next(iter(req.ctx.unstorable.items()))
        raise UnstorableValue(req.ctx.run_id, what, cause)
    _open(req, owner=None)
    raise Suspend(req.key)


async def _suspend_async(ctx: RunContext, key: str, *request: Any) -> Any:
    offload = ctx.engine.store_threads.call
    return await offload(_suspend, await offload(_request, ctx, key, *request))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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


def suspend_at_boundary(ctx: RunContext) -> None:
    """Suspend the run here if someone asked for it with ``suspend_flow_run(flow_run_id=)``.

    Called before each task call and each pause. Costs nothing unless this process heard
    of a request for this run; a request a re-run already passed is skipped.
    """
    engine, run_id = ctx.engine, ctx.run_id
    for name in sorted(engine.suspend_requests(run_id)):
        key = name.removeprefix(SUSPEND_REQUEST)
        request = engine.store.get_metadata(run_id, name)
        if not isinstance(request, dict) or engine.store.get_pause(run_id, key) is not None:
            engine.forget_suspend_request(run_id, name)
            continue
        if ctx.parent_run_id is not None:
            # Refusing would fail a run nobody asked to fail; the outer run can be suspended.
            engine.forget_suspend_request(run_id, name)
            logger.warning(
                "suspend request ignored: nested flow",
                extra={"action": "suspend_request_ignored", "run_id": run_id, "key": key},
            )
            continue
        timeout = request.get("timeout")
        now = engine.store.clock()
        pause = Pause(
            run_id=run_id,
            key=key,
            suspend=True,
            status=PauseStatus.WAITING,
            schema=request.get("schema"),
            title=request.get("title"),
            description=request.get("description"),
            initial={},
            approvers=tuple(request.get("approvers") or ctx.flow.approvers),
            forbid_starter=bool(request.get("forbid_starter", ctx.flow.forbid_starter)),
            created_at=now,
            deadline=now + timedelta(seconds=timeout) if timeout is not None else None,
            response=None,
            responder=None,
            answered_at=None,
            errors={},
        )
        engine.forget_suspend_request(run_id, name)
        _suspend(_Request(ctx, key, None, timeout, pause, is_new=True))


def _request_suspend(
    run_id: str,
    wait_for_input: Any,
    timeout: float | None,
    key: str | None,
    approvers: Sequence[str] | None,
    forbid_starter: bool | None,
) -> None:
    from signoff.engine.runtime import get_engine

    _check_arguments(timeout, key)
    engine = get_engine()
    run = engine.get_run(run_id)
    model = run_input_from_type(wait_for_input) if wait_for_input is not None else None
    schema = input_schema(model) if model is not None else None
    key = key or f"suspend-{uuid.uuid4().hex[:12]}"
    request = {
        "schema": schema,
        "title": schema.get("title") if schema else None,
        "description": model.signoff_description if model is not None else None,
        "timeout": timeout,
        "approvers": list(approvers) if approvers is not None else None,
        **({"forbid_starter": forbid_starter} if forbid_starter is not None else {}),
    }
    if not engine.store.request_suspend(run.id, SUSPEND_REQUEST + key, request):
        current = engine.store.get_run(run.id).state
        if current is RunState.RUNNING:
            raise ValueError(f"run {run.id} already has a request to suspend with key {key!r}")
        raise InvalidTransition(run.id, current.value, RunState.SUSPENDED.value)
    engine.notify()
    logger.info(
        "suspend requested",
        extra={"action": "suspend_requested", "run_id": run.id, "key": key},
    )


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
        ValueError: an option is malformed (the message names it).
    """
    del poll_interval  # see the docstring
    ctx = require_run("pause_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = _prepare(ctx, wait_for_input, timeout, key, decision)
    request = (model, timeout, False, decision)
    if ctx.is_async and _in_event_loop():
        return _pause_async(ctx, key, *request)
    return _wait_sync(_request(ctx, key, *request))


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
) -> Any:
    """``pause_flow_run`` as a coroutine, whatever kind of flow calls it."""
    del poll_interval
    ctx = require_run("apause_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = _prepare(ctx, wait_for_input, timeout, key, decision)
    return await _pause_async(ctx, key, model, timeout, False, decision)


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: str | None = None,
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

    With ``flow_run_id`` (from anywhere, even outside a flow) it asks that running run to
    suspend at its next task call or pause, waiting for ``wait_for_input``, and returns
    ``None`` at once (awaitable in async code). Code between boundaries is not
    interrupted.

    Raises:
        UnstorableValue: a parameter or task result of the run cannot be stored, so the
            run could not be taken up again; nothing is suspended.
        CannotSuspend: the flow was called from another flow (suspend the outer one).
        InvalidTransition: ``flow_run_id`` names a run that is not running.
        PauseTimeout: on the re-run, if the suspend timed out before anyone answered.
        pydantic.ValidationError: as for ``pause_flow_run``.
        MissingContext: called outside a flow run without ``flow_run_id``.
    """
    current = current_run.get()
    if flow_run_id is not None and (current is None or current.run_id != flow_run_id):
        _request_suspend(flow_run_id, wait_for_input, timeout, key, approvers, forbid_starter)
        return Done() if _in_event_loop() else None
    ctx = require_run("suspend_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = _prepare(ctx, wait_for_input, timeout, key, decision)
    request = (model, timeout, True, decision)
    if ctx.is_async and _in_event_loop():
        return _suspend_async(ctx, key, *request)
    return _suspend(_request(ctx, key, *request))


async def asuspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: str | None = None,
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
    if flow_run_id is not None and (current is None or current.run_id != flow_run_id):
        await asyncio.to_thread(
            _request_suspend, flow_run_id, wait_for_input, timeout, key, approvers, forbid_starter
        )
        return None
    ctx = require_run("asuspend_flow_run()")
    suspend_at_boundary(ctx)
    decision = Decision(
        approvers, forbid_starter, quorum, veto, escalate_after, escalate_to, notify, confirm
    )
    key, model = _prepare(ctx, wait_for_input, timeout, key, decision)
    return await _suspend_async(ctx, key, model, timeout, True, decision)
