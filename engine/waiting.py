"""How a pause or suspend call waits: storing the pause it asks for (``engine.asking``),
and turning where that pause stands into the call's return value or exception.

``engine.pausing`` holds the public functions; this module is their machinery, shared by
the sync and async twins and by a suspend requested from another run
(``pausing.suspend_at_boundary``). A sync call blocks its thread on a ``ThreadWaiter``;
an async call awaits a ``LoopWaiter`` and runs every store call on the engine's store
threads, so its event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import replace
from typing import Any

from signoff.engine.asking import PauseRequest, pause_request
from signoff.engine.context import RunContext
from signoff.engine.errors import (
    AlreadyWaiting,
    CannotSuspend,
    PauseTimeout,
    StoreError,
    UnstorableValue,
)
from signoff.engine.input import RunInput, load_answer
from signoff.engine.input_schema import input_schema
from signoff.engine.quorum import Answered, Answers
from signoff.engine.refusals import refusal_errors
from signoff.engine.runs import GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.signals import Cancel, Suspend, TakenOver
from signoff.engine.timers import ESCALATE_PREFIX, EXPIRE_PREFIX, pause_job_id

# At import, not at the first pause: a process that runs flows needs it, and loads it
# before its flows wait (``signoff runs list`` imports none of this module).
from signoff.engine.validation import prepare_schema
from signoff.engine.waiters import Asked, LoopWaiter, ThreadWaiter

logger = logging.getLogger(__name__)

#: run metadata under which a request to suspend at the next boundary is kept (+ its key)
SUSPEND_REQUEST = "signoff.suspend:"
#: the answer is not there yet
_WAITING = object()
#: where a pause stands once an answer to it was stored
_ANSWERED = frozenset({PauseStatus.ANSWERED, PauseStatus.ACCEPTED, PauseStatus.REJECTED})


#: models whose answers' schema check this process has built (weakly: with_initial_data
#: makes classes)
_READIED: weakref.WeakSet[type[RunInput]] = weakref.WeakSet()


def _open(req: PauseRequest, owner: str | None) -> None:
    """Store the pause (or take it up again after a re-run) and set its timer."""
    engine, run_id = req.ctx.engine, req.ctx.run_id
    if req.pause.schema is not None and req.model is not None and req.model not in _READIED:
        # An answer given in this process is checked against the schema: the check is
        # built now, once per model, rather than on the first answer's clock.
        prepare_schema(req.pause.schema)
        _READIED.add(req.model)
    give_up_abandoned(req.ctx, storing=req.key)
    logs = req.ctx.take_logs()
    if req.is_new:
        opened = engine.store.open_pause(req.pause, owner, logs, runner=engine.process_id)
    else:
        state = RunState.PAUSED if owner else RunState.SUSPENDED
        opened = engine.store.transition(
            run_id,
            state,
            state.value.capitalize(),
            f"waiting for input {req.key!r}",
            expect=(RunState.RUNNING,),
            expect_owner=engine.process_id,
            logs=logs,
            owner=owner,
        )
    if not opened:
        raise _not_opened(req)
    if req.pause.deadline is not None:
        engine.timers.call_at(
            pause_job_id(EXPIRE_PREFIX, run_id, req.key),
            req.pause.deadline,
            "signoff.engine.timers:expire_due_pauses",
        )
    if req.pause.escalate_at is not None and req.pause.escalated_at is None:
        engine.timers.call_at(
            pause_job_id(ESCALATE_PREFIX, run_id, req.key),
            req.pause.escalate_at,
            "signoff.engine.timers:escalate_due_pauses",
        )
    engine.notify()
    logger.info(
        "waiting for input",
        extra={
            "action": "run_suspended" if owner is None else "run_paused",
            "run_id": run_id,
            "flow": req.ctx.flow_name,
            "key": req.key,
            "takes_input": req.pause.schema is not None,
        },
    )


def _outcome(
    req: PauseRequest,
    pause: Pause,
    *,
    read: bool = False,
    waiter: ThreadWaiter | LoopWaiter | None = None,
) -> Any:
    """What the waiting call returns or raises, given where its pause is now.

    ``read``: the pause was read back after a wake-up rather than handed over with its
    run's state, so the run may have been taken over meanwhile (this process was taken
    for dead): its answer then belongs to the process that runs it now, which may be this
    very process's worker running it again (then ``waiter`` was told so).
    """
    ctx = req.ctx
    if pause.status is PauseStatus.CANCELLED or ctx.engine.is_cancelled(ctx.run_id):
        raise Cancel(ctx.run_id)
    if pause.status is PauseStatus.WAITING:
        return _WAITING
    if pause.status is PauseStatus.TIMED_OUT:
        # The flow may catch this and go on, so the run is running again.
        moved = ctx.engine.store.transition(
            ctx.run_id,
            RunState.RUNNING,
            "Running",
            f"no input for {req.key!r} in time",
            expect=(RunState.PAUSED,) if read else (RunState.PAUSED, RunState.SUSPENDED),
            expect_owner=ctx.engine.process_id if read else None,
            owner=ctx.engine.claim_ownership(),
        )
        if read and not moved:
            raise _taken_over(req)
        raise PauseTimeout(
            ctx.run_id, req.key, req.timeout, answers=len(pause.answers), quorum=pause.quorum
        )
    if read:
        run = ctx.engine.store.get_run(ctx.run_id)
        if run.state is RunState.CANCELLED:
            # Cancelled from another process whose event this one has not heard yet: a
            # cancel, not a take-over (its owner was cleared with it).
            raise Cancel(ctx.run_id)
        # The flag after the read: this process's claim sets it before the claim commits,
        # so a run read as claimed here again is never taken for this waiter's.
        if run.owner != ctx.engine.process_id or (waiter is not None and waiter.taken_over):
            raise _taken_over(req)
    try:
        value = _load(req, pause, waiter)
    except Exception as exc:
        # Not only a ValidationError: a validator may raise anything, which the flow raises
        # as Prefect's does, and the answer is refused for it (nobody waits for a verdict).
        errors = refusal_errors(exc)
        changed = _model_changed(req, pause)
        if changed is not None and "" not in errors:
            errors = {"": changed, **errors}  # read first: it explains the others
        refused = _refused_answer(req, pause)
        if ctx.engine.store.settle_pause(refused, False, errors, flow_name=ctx.flow_name):
            ctx.engine.notify()
        raise
    # The flow has its answer: the verdict is stored on the way to its next write.
    ctx.engine.store.accept_later(pause, flow_name=ctx.flow_name, then=ctx.engine.notify)
    return value


def _model_changed(req: PauseRequest, pause: Pause) -> str | None:
    """Why a refusal may not be the answerer's fault: the pause was asked with another
    version of its model (a release came while the run waited), whose form could not show
    what this version requires. None when it is the same."""
    if req.is_new or req.model is None or pause.schema is None:
        return None
    if pause.schema == input_schema(req.model):
        return None
    return (
        f"the input model {req.model.__name__} changed while the run waited: the form showed "
        "the version it was asked with"
    )


def _load(req: PauseRequest, pause: Pause, waiter: ThreadWaiter | LoopWaiter | None = None) -> Any:
    """The validated answer, or (with a quorum) every answer with who gave it."""
    if req.quorum is None:
        judged = waiter.judged if waiter is not None else None
        if judged is not None and judged.input == pause.response:
            # A resumer here judged it and stored it, and this wake-up beat its hand-over.
            if judged.answer.error is not None:
                raise judged.answer.error
            return judged.answer.value
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


def _refused_answer(req: PauseRequest, pause: Pause) -> Pause:
    """``pause`` as the refusal records it: for a quorum, with who gave the answer its
    model refused, and what, rather than whoever answered last (whose answer may be fine)."""
    if req.quorum is None:
        return pause
    for answer in pause.answers:
        try:
            load_answer(req.model, answer.input)
        except Exception:
            return replace(pause, responder=answer.responder, response=answer.input)
    return pause


def _handed_over(req: PauseRequest, waiter: ThreadWaiter | LoopWaiter) -> Any:
    """The answer the resumer already validated in this process, or _WAITING."""
    if waiter.answer is None or req.quorum is not None:
        # A quorum's answers come back together, with who gave them: read from the store.
        return _WAITING
    if waiter.answer.error is not None:
        raise waiter.answer.error
    return waiter.answer.value


def _delivered(req: PauseRequest, waiter: ThreadWaiter | LoopWaiter) -> Pause | None:
    """The pause as answered, from the answer another process's event carried; None if
    the wake-up carried none (the pause is then read)."""
    delivered, waiter.delivered = waiter.delivered, None
    if delivered is None or req.quorum is not None:
        return None
    return replace(
        req.pause,
        status=PauseStatus.ANSWERED,
        response=delivered.response,
        responder=delivered.responder,
    )


def _asked(req: PauseRequest) -> Asked:
    return Asked(req.pause, req.ctx.flow_name, req.ctx.started_by)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def wait_for_answer(req: PauseRequest) -> Any:
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
        waiter.asked = _asked(req)
        # The pause just stored waits: no need to read it back. The waiter was registered
        # before it was stored, so whatever answers it meanwhile has woken the waiter.
        pause: Pause | None = req.pause
        while True:
            if waiter.taken_over:
                raise _taken_over(req)
            # An answer validated in this process is handed over: nothing to read.
            outcome = _handed_over(req, waiter)
            if outcome is not _WAITING:
                return outcome
            pause = pause or _delivered(req, waiter)
            read = pause is None
            if pause is None:
                pause = engine.store.get_pause(run_id, req.key)
                assert pause is not None
            outcome = _outcome(req, pause, read=read, waiter=waiter)
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


def _taken_over(req: PauseRequest) -> TakenOver:
    logger.warning(
        "run taken over by another process",
        extra={"action": "run_taken_over", "run_id": req.ctx.run_id, "key": req.key},
    )
    return TakenOver(req.ctx.run_id)


def _not_opened(req: PauseRequest) -> BaseException:
    """Why a pause could not be opened: its run is not RUNNING in this process any more."""
    engine, run_id = req.ctx.engine, req.ctx.run_id
    run = engine.store.get_run(run_id)
    if run.state is RunState.CANCELLED or engine.is_cancelled(run_id):
        return Cancel(run_id)
    if run.owner == engine.process_id and run.state.is_waiting:
        waiting = engine.store.waiting_pause(run_id)
        return AlreadyWaiting(run_id, waiting.key if waiting is not None else None)
    return _taken_over(req)


def _look(req: PauseRequest, waiter: LoopWaiter) -> Any:
    """Read the pause again and judge where it is now."""
    pause = req.ctx.engine.store.get_pause(req.ctx.run_id, req.key)
    assert pause is not None
    return _outcome(req, pause, read=True, waiter=waiter)


def _expire(req: PauseRequest) -> None:
    req.ctx.engine.store.expire_pause(req.ctx.run_id, req.key)
    req.ctx.engine.notify()


def _open_owned(req: PauseRequest) -> None:
    _open(req, req.ctx.engine.claim_ownership())


async def _wait_async(req: PauseRequest) -> Any:
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
    opened = False
    # Started, then awaited: cancelled meanwhile, the store thread may be storing it still.
    try:
        stopped = not await _stored(req)
        opened = True
        if stopped:
            raise asyncio.CancelledError
        waiter.asked = _asked(req)
        # As in wait_for_answer: the pause just stored waits, and the waiter hears of any change.
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
            if waiter.taken_over:
                raise _taken_over(req)
            outcome = _handed_over(req, waiter)
            if outcome is not _WAITING:
                return outcome
            delivered = _delivered(req, waiter)
            if delivered is not None:
                outcome = await offload(_outcome, req, delivered, waiter=waiter)
            else:
                outcome = await offload(_look, req, waiter)
            if outcome is not _WAITING:
                return outcome
    except asyncio.CancelledError:
        outcome = await _answered_first(req, waiter, opened=opened)
        if outcome is not _WAITING:
            # The answer was stored before the flow stopped awaiting (asyncio.wait_for's
            # deadline a moment later): it is the flow's, as its sender was told, and
            # wait_for returns it. Cancelled, it would be accepted and heard by nothing.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return outcome
        if opened:
            _stopped_awaiting(req)
        raise
    finally:
        engine.waiters.remove(run_id, waiter)


async def _answered_first(req: PauseRequest, waiter: LoopWaiter, *, opened: bool) -> Any:
    """As the flow stops awaiting: the answer stored before that, if any (else _WAITING,
    and the pause is ended as abandoned). Not while the process stops: the pause then stays
    for the run's suspension. ``opened``: the flow knows its pause stored; before that, an
    answer this process handed over is all there can be (the store's end is not awaited:
    its timer's write may wait for a busy database)."""
    if req.ctx.leaving():
        return _WAITING  # Ctrl-C: the run is suspended, and its answer runs it again
    outcome = _handed_over(req, waiter)
    if outcome is not _WAITING or not opened or req.quorum is not None:
        return outcome
    try:
        return await req.ctx.engine.store_threads.call(_end_unless_answered, req, waiter)
    except (RuntimeError, StoreError):
        return _WAITING  # the engine is closing, or the store failed: ended as before


def _end_unless_answered(req: PauseRequest, waiter: LoopWaiter) -> Any:
    ctx = req.ctx
    _end_abandoned(ctx, req.key)  # unless it no longer waits: answered, say
    pause = ctx.engine.store.get_pause(ctx.run_id, req.key)
    if pause is None or pause.status not in _ANSWERED:
        return _WAITING
    return _outcome(req, pause, read=True, waiter=waiter)


async def _stored(req: PauseRequest) -> bool:
    """Store the pause on a store thread, started before it is awaited: if the flow stops
    awaiting meanwhile, the store thread may be storing it still. (Its own coroutine, so
    that the future is not kept, a kilobyte, while the flow waits.)

    Returns False when the flow stopped awaiting just after the pause was stored: an answer
    may have come already (see ``_answered_first``).
    """
    opening = req.ctx.engine.store_threads.start(_open_owned, req)
    try:
        await asyncio.wrap_future(opening)
    except asyncio.CancelledError:
        if opening.done() and not opening.cancelled() and opening.exception() is None:
            return False
        if not opening.cancel():
            # Stored in a moment, and ended after that (the give-up waits for it), rather
            # than left open. Cancelled before it ran, nothing is stored.
            req.ctx.opening = opening
            _stopped_awaiting(req)
        raise
    return True


def _stopped_awaiting(req: PauseRequest) -> None:
    """The flow stopped awaiting (asyncio.wait_for, a cancelled task). The pause ends now:
    left waiting, it would take an answer that nothing hears. If the process is stopping,
    it stays, for the worker that takes the run over as from any process that died, or for
    the run's suspension (Ctrl-C under asyncio.run)."""
    req.ctx.abandoned = req.key
    req.ctx.abandoned_leaving = req.ctx.leaving()
    if not req.ctx.abandoned_leaving:
        _give_up_soon(req.ctx)


def _give_up_soon(ctx: RunContext) -> None:
    """Start ending the abandoned pause on a store thread: the cancelled coroutine may not
    wait for it. The flow's next write (``give_up_abandoned``) waits for it instead."""

    def give_up() -> None:
        try:
            give_up_abandoned(ctx)
        except Exception as exc:  # the flow's next write tries again, and raises
            logger.warning(
                "could not end the pause the flow stopped awaiting",
                extra={"action": "pause_abandon_failed", "run_id": ctx.run_id, "error": repr(exc)},
            )

    # RuntimeError: the engine is closing, and the run's end gives the pause up.
    with contextlib.suppress(RuntimeError):
        ctx.engine.store_threads.start(give_up)


def give_up_abandoned(ctx: RunContext, storing: str | None = None) -> None:
    """End the pause the flow stopped awaiting: the pause no longer waits (timed out, as
    the flow's own wait did) and the run is running again. Called as soon as the await is
    cancelled, and before the flow's next write, which waits for that call to finish.

    ``storing``: the key of the pause the caller is about to store. If the flow stopped
    awaiting that very pause already, it is ended once stored (by the give-up its
    cancellation started, which waits for the store), not here, before it exists."""
    opening = ctx.opening
    if opening is not None and storing is None:
        # Still being stored when the flow stopped awaiting it (it runs: nothing waits
        # behind it in the pool). Failed to store, there is nothing to end.
        with contextlib.suppress(Exception):
            opening.result()
    with ctx.giving_up:
        key = ctx.abandoned
        if key is None or key == storing:
            return
        _end_abandoned(ctx, key)
        ctx.abandoned = None
        ctx.opening = None


def _end_abandoned(ctx: RunContext, key: str) -> None:
    engine = ctx.engine
    if engine.store.expire_pause(ctx.run_id, key, resumed_by=engine.process_id):
        engine.notify()
        logger.info(
            "flow stopped waiting",
            extra={"action": "pause_abandoned", "run_id": ctx.run_id, "key": key},
        )


async def pause_async(ctx: RunContext, key: str, *request: Any) -> Any:
    return await _wait_async(await ctx.engine.store_threads.call(pause_request, ctx, key, *request))


def suspend_here(req: PauseRequest) -> Any:
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


async def suspend_here_async(ctx: RunContext, key: str, *request: Any) -> Any:
    offload = ctx.engine.store_threads.call
    return await offload(suspend_here, await offload(pause_request, ctx, key, *request))


def in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


__all__ = [
    "SUSPEND_REQUEST",
    "give_up_abandoned",
    "in_event_loop",
    "pause_async",
    "suspend_here",
    "suspend_here_async",
    "wait_for_answer",
]
