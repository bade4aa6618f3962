"""How a pause or suspend call waits: storing the pause it asks for (``engine.asking``),
then waking until ``engine.pause_outcomes`` turns where that pause stands into the call's
return value or exception.

``engine.pausing`` holds the public functions; this module is their machinery, shared by
the sync and async twins and by a suspend requested from another run
(``suspend_requests.suspend_at_boundary``). A sync call blocks its thread on a ``ThreadWaiter``;
an async call awaits a ``LoopWaiter`` and runs every store call on the engine's store
threads, so its event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

from signoff.engine.asking import PauseRequest, pause_request
from signoff.engine.context import RunContext
from signoff.engine.errors import AlreadyWaiting, CannotSuspend, StoreError, UnstorableValue
from signoff.engine.input import RunInput
from signoff.engine.pause_outcomes import (
    WAITING,
    delivered_pause,
    handed_over,
    pause_outcome,
    refuse_if_closed,
    taken_over,
)
from signoff.engine.runs import Pause, PauseStatus, RunState
from signoff.engine.signals import Cancel, EngineClosed, Suspend
from signoff.engine.timers import ESCALATE_PREFIX, EXPIRE_PREFIX, pause_job_id

# At import, not at the first pause: a process that runs flows needs it, and loads it
# before its flows wait (``signoff runs list`` imports none of this module).
from signoff.engine.validation import prepare_schema
from signoff.engine.waiters import Asked, LoopWaiter, ThreadWaiter

logger = logging.getLogger(__name__)

#: run metadata under which a request to suspend at the next boundary is kept (+ its key)
SUSPEND_REQUEST = "signoff.suspend:"
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


def _asked(req: PauseRequest) -> Asked:
    return Asked(req.pause, req.ctx.flow_name, req.ctx.started_by)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def wait_for_answer(req: PauseRequest) -> Any:
    engine, run_id = req.ctx.engine, req.ctx.run_id
    if not req.is_new:
        outcome = pause_outcome(req, req.pause)
        if outcome is not WAITING:
            return outcome
    deadline = None if req.timeout is None else time.monotonic() + req.timeout
    waiter = ThreadWaiter(req.key, req.model)
    engine.waiters.add(run_id, waiter)  # before the pause is stored: no wake-up is missed
    try:
        refuse_if_closed(req.ctx, req.key)
        _open(req, engine.claim_ownership())
        waiter.asked = _asked(req)
        # The pause just stored waits: no need to read it back. The waiter was registered
        # before it was stored, so whatever answers it meanwhile has woken the waiter.
        pause: Pause | None = req.pause
        while True:
            if waiter.taken_over:
                raise taken_over(req)
            # An answer validated in this process is handed over: nothing to read.
            outcome = handed_over(req, waiter)
            if outcome is not WAITING:
                return outcome
            pause = pause or delivered_pause(req, waiter)
            read = pause is None
            if pause is None:
                pause = engine.store.get_pause(run_id, req.key)
                assert pause is not None
            outcome = pause_outcome(req, pause, read=read, waiter=waiter)
            if outcome is not WAITING:
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


def _not_opened(req: PauseRequest) -> BaseException:
    """Why a pause could not be opened: its run is not RUNNING in this process any more."""
    engine, run_id = req.ctx.engine, req.ctx.run_id
    with req.ctx.suspending:  # a suspend beside this call, storing now, sets it first
        if req.ctx.suspended is not None:
            return Suspend(req.ctx.suspended)
    run = engine.store.get_run(run_id)
    if run.state is RunState.CANCELLED or engine.is_cancelled(run_id):
        return Cancel(run_id)
    if run.owner == engine.process_id and run.state.is_waiting:
        waiting = engine.store.waiting_pause(run_id)
        return AlreadyWaiting(run_id, waiting.key if waiting is not None else None)
    return taken_over(req)


def _look(req: PauseRequest, waiter: LoopWaiter) -> Any:
    """Read the pause again and judge where it is now."""
    pause = req.ctx.engine.store.get_pause(req.ctx.run_id, req.key)
    assert pause is not None
    return pause_outcome(req, pause, read=True, waiter=waiter)


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
        outcome = await offload(pause_outcome, req, req.pause)
        if outcome is not WAITING:
            return outcome
    deadline = None if req.timeout is None else time.monotonic() + req.timeout
    waiter = LoopWaiter(req.key, req.model)
    engine.waiters.add(run_id, waiter)
    opened = collected = False
    # Started, then awaited: cancelled meanwhile, the store thread may be storing it still.
    try:
        refuse_if_closed(req.ctx, req.key)
        stopped = not await _stored(req)
        opened = True
        if stopped:
            raise asyncio.CancelledError
        waiter.asked = _asked(req)
        # As in wait_for_answer: the pause just stored waits, and the waiter hears of any change.
        if engine.is_cancelled(run_id):
            raise Cancel(run_id)
        while True:
            outcome = handed_over(req, waiter)
            if outcome is not WAITING:
                return outcome
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                await offload(_expire, req)
            else:
                await waiter.wait(remaining)
            if waiter.taken_over:
                raise taken_over(req)
            outcome = handed_over(req, waiter)
            if outcome is not WAITING:
                return outcome
            delivered = delivered_pause(req, waiter)
            if delivered is not None:
                outcome = await offload(pause_outcome, req, delivered, waiter=waiter)
            else:
                outcome = await offload(_look, req, waiter)
            if outcome is not WAITING:
                return outcome
    except asyncio.CancelledError:
        outcome = await _answered_first(req, waiter, opened=opened)
        if outcome is not WAITING:
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
    except GeneratorExit:
        # Collected, its loop closed under it: engine.waiters let it go already (the
        # heartbeat's take_gone: they kept it alive), and the collecting thread may hold
        # their lock, which it would wait for, for good.
        collected = True
        raise
    finally:
        if not collected:
            engine.waiters.remove(run_id, waiter)


async def _answered_first(req: PauseRequest, waiter: LoopWaiter, *, opened: bool) -> Any:
    """As the flow stops awaiting: the answer stored before that, if any (else WAITING,
    and the pause is ended as abandoned). Not while the process stops: the pause then stays
    for the run's suspension. ``opened``: the flow knows its pause stored; before that, an
    answer this process handed over is all there can be (the store's end is not awaited:
    its timer's write may wait for a busy database)."""
    if req.ctx.leaving():
        return WAITING  # Ctrl-C: the run is suspended, and its answer runs it again
    outcome = handed_over(req, waiter)
    if outcome is not WAITING or not opened or req.quorum is not None:
        return outcome
    try:
        return await req.ctx.engine.store_threads.call(_end_unless_answered, req, waiter)
    except (RuntimeError, EngineClosed, StoreError):
        return WAITING  # the engine is closing, or the store failed: ended as before


def _end_unless_answered(req: PauseRequest, waiter: LoopWaiter) -> Any:
    ctx = req.ctx
    _end_abandoned(ctx, req.key)  # unless it no longer waits: answered, say
    pause = ctx.engine.store.get_pause(ctx.run_id, req.key)
    if pause is None or pause.status not in _ANSWERED:
        return WAITING
    return pause_outcome(req, pause, read=True, waiter=waiter)


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

    # EngineClosed: the engine is closing, and the run's end gives the pause up.
    with contextlib.suppress(RuntimeError, EngineClosed):
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
        outcome = pause_outcome(req, req.pause)
        if outcome is not WAITING:
            return outcome
    if req.ctx.unstorable:
        what, cause = next(iter(req.ctx.unstorable.items()))
        raise UnstorableValue(req.ctx.run_id, what, cause)
    with req.ctx.suspending:
        # Another call of this execution (a task beside this one) suspended the run: this
        # call unwinds with it, and is asked when the run is run again. Its store write
        # would be refused, and read as the run taken over by another process.
        if req.ctx.suspended is not None:
            raise Suspend(req.ctx.suspended)
        _open(req, owner=None)
        req.ctx.suspended = req.key
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
