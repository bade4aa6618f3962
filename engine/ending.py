"""How a run ends: completed, failed or crashed (a waiting pause it leaves is cancelled),
or suspended when its process stops while the flow waits for input; and what the caller of
the flow function gets instead of the engine's own signals."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pydantic

from signoff.engine import serialization
from signoff.engine.context import RunContext
from signoff.engine.errors import (
    PauseExpired,
    PauseTimeout,
    RunCancelled,
    RunSuspended,
    RunTakenOver,
)
from signoff.engine.refusals import model_errors
from signoff.engine.runs import RunState
from signoff.engine.signals import Cancel, Suspend, TakenOver
from signoff.engine.waiting import give_up_abandoned

logger = logging.getLogger("signoff.engine.runner")


def complete(ctx: RunContext, result: Any) -> None:
    give_up_abandoned(ctx)
    store = ctx.engine.store
    preview = serialization.preview(result)
    done = store.transition(
        ctx.run_id,
        RunState.COMPLETED,
        "Completed",
        None,
        expect=(RunState.RUNNING,),
        expect_owner=ctx.engine.process_id,
        logs=ctx.take_logs(),
        owner=None,
        result=preview,
    )
    if not done:
        # The flow returned while a pause it made still waits: asked in a coroutine or a
        # thread it did not wait for. The run ends as the flow did (Prefect's completes
        # from Paused too), and nobody can answer that question now. The logs were
        # stored by the attempt above.
        done = store.transition(
            ctx.run_id,
            RunState.COMPLETED,
            "Completed",
            None,
            expect=(RunState.RUNNING, RunState.PAUSED),
            expect_owner=ctx.engine.process_id,
            owner=None,
            result=preview,
        )
        if done:
            store.close_waiting_pauses(ctx.run_id)
            ctx.engine.waiters.wake(ctx.run_id)  # what still waits on it here stops
    ctx.engine.notify()
    if not done:
        _outcome_dropped(ctx, "completed")
        return
    _end_nested(ctx)
    logger.info(
        "run completed",
        extra={"action": "run_completed", "run_id": ctx.run_id, "flow": ctx.flow.name},
    )


def _timed_out(exc: BaseException) -> bool:
    """Whether the flow failed because nobody answered one of its pauses in time. Not a
    PauseExpired (a PauseTimeout for Prefect's sake): that is the flow's own late answer
    to another run, a failure like any other."""
    return isinstance(exc, PauseTimeout) and not isinstance(exc, PauseExpired)


def failure_message(exc: BaseException) -> str:
    if _timed_out(exc):
        return str(exc)
    if isinstance(exc, pydantic.ValidationError):
        detail = "; ".join(f"{k or 'input'}: {v}" for k, v in model_errors(exc).items())
        notes = "".join(f" {note}" for note in getattr(exc, "__notes__", ()))
        return f"input rejected by {exc.title}: {detail}{notes}"
    return serialization.error_text(exc)


def finish_with(ctx: RunContext, exc: BaseException) -> None:
    """Record how the flow stopped. Suspend and cancel were recorded where they happened."""
    store = ctx.engine.store
    if isinstance(exc, Suspend | Cancel | TakenOver):
        store.add_logs(ctx.run_id, ctx.take_logs())
        return
    stopping = _process_stopping(ctx, exc)
    if stopping:
        with ctx.giving_up:
            if ctx.abandoned_leaving:  # Ctrl-C cancelled the await: the pause stays open
                ctx.abandoned = None
        if ctx.parent_run_id is not None or ctx.engine.store.waiting_within(ctx.run_id):
            _left_as_if_dead(ctx)
            return
    # A pause the flow stopped awaiting is ended first, as it would be by its next write:
    # not left for the run's end to cancel, nor ended after it.
    give_up_abandoned(ctx)
    logs = ctx.take_logs()
    if stopping:
        # Ctrl-C (or sys.exit) while the flow waited for input: the question stays open,
        # and answering it runs the flow again on a worker, as for a process that died.
        if store.transition(
            ctx.run_id,
            RunState.SUSPENDED,
            "Suspended",
            "the process that was waiting stopped; answering runs the flow again",
            expect=(RunState.PAUSED,),
            expect_owner=ctx.engine.process_id,
            logs=logs,
            owner=None,
        ):
            ctx.engine.notify()
            logger.info(
                "suspended the run waiting in this process as it stops",
                extra={
                    "action": "paused_runs_suspended",
                    "runs": 1,
                    "run_id": ctx.run_id,
                    "flow": ctx.flow.name,
                },
            )
            return
        logs = []  # stored with the attempt
    state = RunState.FAILED if isinstance(exc, Exception) else RunState.CRASHED
    name = "TimedOut" if _timed_out(exc) else state.value.capitalize()
    message = failure_message(exc)
    done = store.transition(
        ctx.run_id,
        state,
        name,
        message,
        expect=(RunState.RUNNING, RunState.PAUSED),
        expect_owner=ctx.engine.process_id,
        logs=logs,
        owner=None,
    )
    ctx.engine.notify()
    if not done:
        _outcome_dropped(ctx, name.lower())
        return
    # A pause it still waited on (its awaiting task cancelled, or a sibling's, or the flow
    # failed beside it) can be answered by nobody now; what still waits on it here stops.
    if store.close_waiting_pauses(ctx.run_id):
        ctx.engine.waiters.wake(ctx.run_id)
    _end_nested(ctx)
    # An error, with why, as Prefect's "Finished in state Failed('...')": whoever watches
    # the console or a worker's log sees the reason, not only that it failed. The stored
    # message, not the traceback, unless debugging.
    logger.error(
        "%s: %s",
        "run failed" if name == "Failed" else f"run failed ({name})",
        message,
        exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
        extra={
            "action": "run_failed",
            "run_id": ctx.run_id,
            "flow": ctx.flow.name,
            "error": type(exc).__name__,
            "state": name,
        },
    )


def _left_as_if_dead(ctx: RunContext) -> None:
    """Ctrl-C while a flow called from another waits (or runs): both runs are left as they
    stand, as when the process dies. Its paused runs are suspended as it exits, and the
    outer run, no longer owned by a live process, is run again by a worker, which takes
    the called flow up where it waits; crashed, they closed the question."""
    ctx.engine.store.add_logs(ctx.run_id, ctx.take_logs())
    logger.info(
        "run left for a worker to take over as the process stops",
        extra={"action": "run_left", "run_id": ctx.run_id, "flow": ctx.flow.name},
    )


def _process_stopping(ctx: RunContext, exc: BaseException) -> bool:
    """Whether ``exc`` stops the process (Ctrl-C, ``sys.exit``, or the cancellation Ctrl-C
    makes under ``asyncio.run``), rather than the flow alone (an error, or its coroutine
    cancelled by whoever awaited it)."""
    if isinstance(exc, asyncio.CancelledError):
        return ctx.leaving()
    return isinstance(exc, KeyboardInterrupt | SystemExit)


def _end_nested(ctx: RunContext) -> None:
    """A run that ended leaves no run of a flow it called waiting: one an earlier execution
    left unfinished, and this one never reached, is cancelled (no worker runs it alone)."""
    if ctx.fresh and not ctx.called_flows:
        return  # nothing it called: no query on the common path
    store = ctx.engine.store
    for child in store.unfinished_children(ctx.run_id):
        if store.cancel(child, f"its outer run {ctx.run_id} ended without it"):
            ctx.engine.notify()


def _outcome_dropped(ctx: RunContext, outcome: str) -> None:
    """The run was no longer this process's to end: cancelled meanwhile (it stays so), or
    taken over by another process (which ends it)."""
    if ctx.engine.is_cancelled(ctx.run_id):
        return
    logger.warning(
        "run not ended here: another process runs it now, or it ended meanwhile",
        extra={
            "action": "run_outcome_dropped",
            "run_id": ctx.run_id,
            "flow": ctx.flow.name,
            "outcome": outcome,
        },
    )


def went_on_after_close(ctx: RunContext) -> TakenOver:
    """A flow that went on after its engine closed stops at its next store call (a task's
    record, a called flow, its own end), which close's store threads (an async flow's) or
    the closed store (a sync flow's) refuse: the threads' "cannot schedule new futures after
    shutdown" said nothing of why, the store opened connections again that nothing closed,
    and the flow's ``except Exception`` could take either for its own error. As for a pause asked after close,
    nothing more is stored: the run stays running under this process, which close took
    out of the process table, and a worker runs the flow again."""
    logger.info(
        "flow went on after its engine closed; its run is left to a worker",
        extra={"action": "run_left_engine_closed", "run_id": ctx.run_id, "flow": ctx.flow.name},
    )
    return TakenOver(ctx.run_id, waited=False, asked=False)


def for_caller(ctx: RunContext, exc: BaseException) -> BaseException:
    if isinstance(exc, Suspend):
        return RunSuspended(ctx.run_id, exc.key)
    if isinstance(exc, Cancel):
        return RunCancelled(ctx.run_id)
    if isinstance(exc, TakenOver):
        return RunTakenOver(
            ctx.run_id, closed=ctx.engine.closed, waited=exc.waited, asked=exc.asked
        )
    return exc


__all__ = ["complete", "failure_message", "finish_with", "for_caller", "went_on_after_close"]
