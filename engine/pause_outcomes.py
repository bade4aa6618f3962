"""What a waiting pause call returns or raises, judged from where its pause stands now.

``engine.waiting`` stores the pause and waits on it; each time it wakes (or finds the pause
already there after a re-run) it asks this module for the outcome: the validated answer (or
a quorum's answers), a ``PauseTimeout``, a cancellation, a take-over by another process, or
``WAITING`` when there is nothing yet. An answer the resumer already validated in this
process, or one another process's event carried, is taken as it was handed over.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from signoff.engine.asking import PauseRequest
from signoff.engine.context import RunContext
from signoff.engine.errors import PauseTimeout
from signoff.engine.input import load_answer
from signoff.engine.input_schema import input_schema
from signoff.engine.quorum import Answered, Answers
from signoff.engine.refusals import refusal_errors
from signoff.engine.runs import GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.signals import Cancel, TakenOver
from signoff.engine.waiters import LoopWaiter, ThreadWaiter

# Under the name it logged as before this was split from engine.waiting: logging settings
# that name it keep working.
logger = logging.getLogger("signoff.engine.waiting")

#: the answer is not there yet
WAITING = object()


def pause_outcome(
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
        return WAITING
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
            raise taken_over(req)
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
            raise taken_over(req)
    try:
        value = _load(req, pause, waiter)
    except Exception as exc:
        # Not only a ValidationError: a validator may raise anything, which the flow raises
        # as Prefect's does, and the answer is refused for it (nobody waits for a verdict).
        errors = refusal_errors(exc)
        refused = _refused_answer(req, pause)
        if refused is not pause and refused.responder is not None:
            # Judged together, the answers share one verdict: each reason says whose answer
            # it is about, wherever it is shown (the pause, the trail, the command line).
            whose = f"(in {refused.responder}'s answer)"
            errors = {field: f"{message} {whose}" for field, message in errors.items()}
            exc.add_note(whose)  # so does a failed run's message, should the flow not catch it
        changed = _model_changed(req, pause)
        if changed is not None and "" not in errors:
            errors = {"": changed, **errors}  # read first: it explains the others
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
    model refused, and what, rather than whoever answered last (whose answer may be fine);
    ``pause`` itself when no one answer is refused."""
    if req.quorum is None:
        return pause
    for answer in pause.answers:
        try:
            load_answer(req.model, answer.input)
        except Exception:
            return replace(pause, responder=answer.responder, response=answer.input)
    return pause


def handed_over(req: PauseRequest, waiter: ThreadWaiter | LoopWaiter) -> Any:
    """The answer the resumer already validated in this process, or WAITING."""
    if waiter.answer is None or req.quorum is not None:
        # A quorum's answers come back together, with who gave them: read from the store.
        return WAITING
    if waiter.answer.error is not None:
        raise waiter.answer.error
    return waiter.answer.value


def delivered_pause(req: PauseRequest, waiter: ThreadWaiter | LoopWaiter) -> Pause | None:
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


def taken_over(req: PauseRequest) -> TakenOver:
    return stopped_here(req.ctx, req.key)


def stopped_here(ctx: RunContext, key: str, *, waited: bool = True) -> TakenOver:
    """Why the flow stops waiting (or, ``waited`` False, stops before it waits): its engine
    closed, or another process runs its run now."""
    if not waited:
        # Nothing else says it: close's paused_runs_suspended counted only what waited.
        logger.info(
            "flow asked for input after its engine closed; its run is left to a worker",
            extra={"action": "pause_refused_engine_closed", "run_id": ctx.run_id, "key": key},
        )
    elif ctx.engine.closed:
        # Not taken over: Engine.close stopped the wait, and says what it did with the run
        # (paused_runs_suspended); a line per flow after it would read as work after the stop.
        logger.debug(
            "flow stopped waiting: its engine closed",
            extra={"action": "wait_stopped_engine_closed", "run_id": ctx.run_id, "key": key},
        )
    else:
        logger.warning(
            "run taken over by another process",
            extra={"action": "run_taken_over", "run_id": ctx.run_id, "key": key},
        )
    return TakenOver(ctx.run_id, waited=waited)


def refuse_if_closed(ctx: RunContext, key: str) -> None:
    """Stop a pause asked of a closed engine: close stopped this process's waiters and the
    dispatcher that wakes them, so it would wait out its whole timeout. Nothing is stored:
    the run stays running under this process, which close removed from the process table,
    so a worker runs the flow again as for a process that stopped (the pause is asked
    again there). Checked before the pause is asked, and once its waiter is registered (a
    close in between stopped the waiters before the waiter was there to be stopped)."""
    if ctx.engine.closed:
        raise stopped_here(ctx, key, waited=False)


__all__ = [
    "WAITING",
    "delivered_pause",
    "handed_over",
    "pause_outcome",
    "refuse_if_closed",
    "stopped_here",
    "taken_over",
]
