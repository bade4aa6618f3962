"""Executing a flow run: in the caller's process, or in a worker for a queued run."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from signoff.engine import interrupts, serialization
from signoff.engine.actors import Actor, as_actor, is_group_id
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.console import show_runs_if_unconfigured
from signoff.engine.context import RunContext, current_run
from signoff.engine.definition import FlowDefinition
from signoff.engine.ending import complete, finish_with, for_caller, went_on_after_close
from signoff.engine.errors import FlowImportError, NotAPerson, StoreError, UnloadableValue
from signoff.engine.runs import Run, RunState
from signoff.engine.runtime import Engine, get_engine
from signoff.engine.signals import Cancel, EngineClosed, Suspend, TakenOver
from signoff.engine.store.claiming import RunSource
from signoff.engine.suspend_requests import (
    suspend_at_boundary,
    suspend_at_end,
    suspended_instead,
)

logger = logging.getLogger(__name__)


def _start(flow: FlowDefinition, parameters: dict[str, Any], started_by: str | None) -> RunContext:
    show_runs_if_unconfigured()
    parent = current_run.get()
    # A called flow's run is its caller's engine's (a worker's, which need not be the
    # process's: that one may be closed, or on another database).
    engine = parent.engine if parent is not None else get_engine()
    if parent is not None and started_by is None:
        started_by = parent.started_by  # a nested flow is started by whoever started its parent
        if started_by is not None and is_group_id(started_by):
            # Stored before group ids were refused: said of the run, which is left as stored.
            raise NotAPerson(
                started_by,
                message=f"run {parent.run_id} was started by {started_by!r}, a Slack user "
                "group's id (stored before Signoff refused them), so its nested flow "
                f"{flow.name!r} has no person to be started by; start {parent.flow.name!r} "
                "again as a person",
            )
    owner = engine.claim_ownership()
    unstorable: dict[str, BaseException] = {}
    try:
        blob = serialization.dump(parameters)
    except Exception as exc:
        blob = serialization.dump(None)
        unstorable["the flow's parameters"] = exc
    run_id = uuid.uuid4().hex
    jsonable = serialization.jsonable(parameters)
    # Calling a flow function runs code the caller already holds: nothing to permit, but
    # the start is recorded like any other, as the Python API's.
    actor = as_actor(started_by) or Actor.python()
    run = engine.store.create_run(
        run_id,
        flow.name,
        flow.ref,
        blob,
        jsonable,
        RunState.RUNNING,
        owner=owner,
        # Whoever ran the script started the run: forbid_starter holds for them too.
        started_by=actor.id,
        approvers=flow.approvers,
        cancellers=flow.cancellers,
        audit=AuditEntry(
            AuditAction.RUN_STARTED, run_id, flow.name, actor, data={"parameters": jsonable}
        ),
        parent_run_id=parent.run_id if parent is not None else None,
    )
    engine.notify()
    logger.info("run started", extra={"action": "run_started", "run_id": run.id, "flow": flow.name})
    ctx = RunContext(
        engine,
        run.id,
        flow,
        flow.is_async,
        actor.id,
        fresh=True,
        parent_run_id=parent.run_id if parent is not None else None,
    )
    ctx.unstorable.update(unstorable)
    return ctx


class _NestedCall(NamedTuple):
    """A flow called from another flow's run: the call's key in that run, and the result
    an earlier execution of that run stored for it (``found``), or the run an earlier
    execution left unfinished (``left``: its process died while the nested flow ran)."""

    parent: RunContext
    key: str
    found: bool
    result: Any
    started: datetime
    left: Run | None = None


def _nested_call(flow: FlowDefinition) -> _NestedCall | None:
    """For a flow called inside another flow's run, its call as that run keeps it: a re-run
    of the outer run (after a suspend, or after its process died) gets a nested flow's
    result back, as a task's, or takes up the nested run it left unfinished, rather than
    running it (and asking its questions) again. None for a top-level call."""
    call = _nested_here(flow)
    if call is None or call.parent.fresh:
        return call
    return _stored_nested(call, flow)


def _nested_here(flow: FlowDefinition) -> _NestedCall | None:
    """A nested call's key in its outer run, taken as it is called, on the caller's thread
    (keys follow call order, as tasks' do); None for a top-level call."""
    parent = current_run.get()
    if parent is None:
        return None
    # A flow call is a suspension boundary, as a task call is (and as Prefect's is): a run
    # asked to suspend stops here rather than run the called flow first.
    suspend_at_boundary(parent)
    parent.called_flows = True
    key = parent.next_task_key(f"flow:{flow.name}")
    return _NestedCall(parent, key, False, None, datetime.now(UTC))


def _stored_nested(call: _NestedCall, flow: FlowDefinition) -> _NestedCall:
    """What an earlier execution of the outer run left for this call: its result, or the
    nested run it left unfinished."""
    store = call.parent.engine.store
    stored = store.completed_task(call.parent.run_id, call.key)
    if stored is not None and stored.result is not None:
        result = serialization.load_stored(
            stored.result, call.parent.run_id, f"the stored result of flow call {call.key!r}"
        )
        return call._replace(found=True, result=result)
    return call._replace(left=store.unfinished_child(call.parent.run_id, flow.name))


def _take_up(flow: FlowDefinition, call: _NestedCall) -> RunContext | None:
    """Run a nested run left unfinished again, here: its answered pauses and completed tasks
    come back as stored, and a pause that still waits is taken up, not asked again. None
    when there is none to take up (or it finished meanwhile): the call starts a new run."""
    if call.left is None:
        return None
    engine = call.parent.engine
    owner = engine.claim_ownership()
    taken = engine.store.transition(
        call.left.id,
        RunState.RUNNING,
        "Running",
        f"run again by its outer run {call.parent.run_id}",
        expect=(RunState.RUNNING, RunState.PAUSED, RunState.SUSPENDED, RunState.SCHEDULED),
        owner=owner,
    )
    if not taken:
        return None
    engine.notify()
    logger.info(
        "nested run taken up",
        extra={"action": "nested_run_taken_up", "run_id": call.left.id, "flow": flow.name},
    )
    return RunContext(
        engine,
        call.left.id,
        flow,
        flow.is_async,
        call.left.started_by,
        fresh=False,
        parent_run_id=call.parent.run_id,
        flow_name=call.left.flow_name,
    )


def _record_nested(call: _NestedCall | None, flow: FlowDefinition, result: Any) -> None:
    """Keep a nested flow's result with the run that called it, for its re-runs."""
    if call is None:
        return
    try:
        blob = serialization.dump(result)
    except Exception:
        return  # not kept: a re-run runs the nested flow again
    call.parent.engine.store.record_task(
        call.parent.run_id,
        call.key,
        flow.name,
        RunState.COMPLETED,
        1,
        blob,
        serialization.preview(result),
        None,
        call.started,
    )


def call_flow(
    flow: FlowDefinition, parameters: dict[str, Any], started_by: str | None = None
) -> Any:
    """Run a sync flow here and now; its result or its exception comes back to the caller."""
    nested = _nested_call(flow)
    if nested is not None and nested.found:
        return nested.result
    taken = _take_up(flow, nested) if nested is not None else None
    try:
        ctx = taken if taken is not None else _start(flow, parameters, started_by)
    except EngineClosed:
        if nested is not None:
            raise  # the calling flow stops, and says why
        raise RuntimeError(f"flow {flow.name!r} not started: its engine was closed") from None
    token = current_run.set(ctx)
    try:
        result = flow.fn(**parameters)
        suspend_at_end(ctx)
    except BaseException as exc:
        try:
            if isinstance(exc, EngineClosed):
                raise
            exc = suspended_instead(ctx, exc)
            finish_with(ctx, exc)
        except EngineClosed:  # in the flow, or as its end was to be stored
            exc = went_on_after_close(ctx)
        if isinstance(exc, Suspend | Cancel | TakenOver):
            raise for_caller(ctx, exc) from None
        raise
    finally:
        current_run.reset(token)
    try:
        complete(ctx, result)
    except (EngineClosed, StoreError) as exc:
        # Out of the run's context here, the closed store's refusal is a StoreError.
        if isinstance(exc, StoreError) and not ctx.engine.closed:
            raise
        raise for_caller(ctx, went_on_after_close(ctx)) from None
    _record_nested(nested, flow, result)
    return result


async def call_flow_async(
    flow: FlowDefinition, parameters: dict[str, Any], started_by: str | None = None
) -> Any:
    """Run an async flow here and now (awaited by the caller); no store call blocks its loop."""
    nested = _nested_here(flow)
    offload = (nested.parent.engine if nested is not None else get_engine()).store_threads.call
    if nested is not None and not nested.parent.fresh:
        nested = await offload(_stored_nested, nested, flow)
    if nested is not None and nested.found:
        return nested.result
    taken: RunContext | None = None
    if nested is not None and nested.left is not None:  # a nested run left unfinished
        taken = await offload(_take_up, flow, nested)
    ctx = taken if taken is not None else await _started(flow, parameters, started_by)
    offload = ctx.engine.store_threads.call
    ctx.loop = asyncio.get_running_loop()  # see Liveness._crash_left_runs
    # Ctrl-C under asyncio.run cancels the flow: its pause stays, as for a sync flow's.
    watch = interrupts.watching()
    ctx.leaving = watch.interrupted
    token = current_run.set(ctx)
    closed = False
    try:
        with watch:
            result = await flow.fn(**parameters)
        if ctx.engine.suspend_requests(ctx.run_id):
            await offload(suspend_at_end, ctx)
    except GeneratorExit:
        _closed_unfinished(ctx)
        closed = True
        raise
    except BaseException as exc:
        try:
            if isinstance(exc, EngineClosed):
                raise
            if ctx.engine.suspend_requests(ctx.run_id):
                exc = await offload(suspended_instead, ctx, exc)
            if _to_record(ctx, exc):
                await ctx.engine.store_threads.finishing(finish_with, ctx, exc)
        except EngineClosed:  # in the flow, or as its end was to be stored
            exc = went_on_after_close(ctx)
        if isinstance(exc, Suspend | Cancel | TakenOver):
            raise for_caller(ctx, exc) from None
        raise
    finally:
        if not closed:  # else collected in another context, where the token is not set
            current_run.reset(token)
    try:
        await ctx.engine.store_threads.finishing(complete, ctx, result)
    except EngineClosed:
        raise for_caller(ctx, went_on_after_close(ctx)) from None
    if nested is not None:
        await offload(_record_nested, nested, flow, result)
    return result


async def _started(
    flow: FlowDefinition, parameters: dict[str, Any], started_by: str | None
) -> RunContext:
    """``_start`` on a store thread. Cancelled while it writes (a ``wait_for`` that ran out
    at once), the run it stores still ends, as a flow cancelled while it runs ends: left
    running, it read "running" for good, in a process that was alive."""
    parent = current_run.get()
    threads = (parent.engine if parent is not None else get_engine()).store_threads
    try:
        starting = asyncio.wrap_future(threads.start(_start, flow, parameters, started_by))
    except EngineClosed:
        if parent is not None:
            raise  # the calling flow stops, and says why
        raise RuntimeError(f"flow {flow.name!r} not started: its engine was closed") from None
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError as exc:
        ctx = await starting
        await threads.finishing(finish_with, ctx, exc)
        raise


def prepare_queued(
    engine: Engine, source: RunSource, *, others_may_import: Callable[[], bool] | None = None
) -> tuple[RunContext, dict[str, Any]] | None:
    """Context and parameters for a run a worker claimed; None if its flow cannot be loaded
    here, in which case the run crashes, or, when ``others_may_import()`` (other workers
    are alive, which may have the flow), is queued again for them (``run_left_queued``)."""
    run, ref, blob = source.run, source.flow_ref, source.parameters
    run_id = run.id
    try:
        flow = engine.flows.resolve(run.flow_name, ref)
    except FlowImportError as exc:
        # During a rolling upgrade, an old worker does not have a flow the new release
        # added; nor does a worker started with other --flows than its peers.
        if others_may_import is not None and others_may_import():
            _leave_queued(
                engine, run_id, run.flow_name, f"cannot import flow {run.flow_name!r}: {exc}"
            )
            return None
        crash_unstartable(
            engine, run_id, run.flow_name, f"no worker can import flow {run.flow_name!r}: {exc}"
        )
        return None
    try:
        parameters = serialization.load_stored(blob, run_id, "its parameters")
    except UnloadableValue as exc:
        # A deploy renamed a parameter's class, say: the release before it may load them.
        if others_may_import is not None and others_may_import():
            _leave_queued(engine, run_id, run.flow_name, str(exc))
            return None
        crash_unstartable(engine, run_id, run.flow_name, str(exc))
        return None
    return RunContext(
        engine,
        run_id,
        flow,
        flow.is_async,
        run.started_by,
        fresh=source.fresh,
        flow_name=run.flow_name,
    ), parameters


def execute_queued(ctx: RunContext, parameters: dict[str, Any]) -> None:
    """Run a sync flow for a worker; every outcome is recorded, nothing is raised but a
    ``StoreError``: the database failed under the run, which the worker then hands back
    to be run again (as after a crash) rather than recording the failure as the flow's."""
    token = current_run.set(ctx)
    try:
        result = ctx.flow.fn(**parameters)
        suspend_at_end(ctx)
    except StoreError:
        raise
    except BaseException as exc:
        exc = suspended_instead(ctx, exc)
        finish_with(ctx, exc)
        if not isinstance(exc, Exception | Suspend | Cancel | TakenOver):
            raise
        return
    finally:
        current_run.reset(token)
    complete(ctx, result)


async def execute_queued_async(
    ctx: RunContext,
    parameters: dict[str, Any],
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run an async flow for a worker, on the worker's loop, without blocking it.

    Cancelled while the worker is ``stopping``, the run records nothing: it stays as stored
    (running, or waiting for input) for another process to take over. A ``StoreError`` is
    raised, as by ``execute_queued``."""
    offload = ctx.engine.store_threads.call
    ctx.leaving = stopping
    token = current_run.set(ctx)
    closed = False
    try:
        result = await ctx.flow.fn(**parameters)
        if ctx.engine.suspend_requests(ctx.run_id):
            await offload(suspend_at_end, ctx)
    except StoreError:
        raise
    except GeneratorExit:
        _closed_unfinished(ctx)
        closed = True
        raise
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and stopping():
            logger.info(
                "run left to another process",
                extra={"action": "run_left", "run_id": ctx.run_id, "flow": ctx.flow.name},
            )
            raise
        if ctx.engine.suspend_requests(ctx.run_id):
            exc = await offload(suspended_instead, ctx, exc)
        if _to_record(ctx, exc):
            await offload(finish_with, ctx, exc)
        if not isinstance(exc, Exception | Suspend | Cancel | TakenOver):
            raise
        return
    finally:
        if not closed:  # else collected in another context, where the token is not set
            current_run.reset(token)
    await offload(complete, ctx, result)


def _to_record(ctx: RunContext, exc: BaseException) -> bool:
    """Whether how the flow stopped leaves anything to store. Not when it was taken over
    with no logs since its pause stored them (a waiting flow its engine's close stopped,
    say): no store call, which the closing engine's store threads would refuse, and the
    flow would raise that refusal instead of RunTakenOver. Nor when it asked for input
    after its engine closed: the logs it made go with the execution a worker repeats."""
    if not isinstance(exc, TakenOver):
        return True
    return bool(ctx.logs) and exc.waited


def _closed_unfinished(ctx: RunContext) -> None:
    """The flow's coroutine was closed without being run to its end: its event loop was
    closed under it, and the coroutine is collected, later, on whatever thread collects
    it. It records nothing (and may await nothing): by then its run is another
    execution's, maybe in this very process (a paused run was suspended by the heartbeat,
    answered, and taken by a worker here), which the end it used to record here ("Crashed:
    GeneratorExit", or "Failed" when collected off the main thread) cut short. The
    heartbeat judges the run (``Liveness._crash_left_runs``): handed over with a lock-free
    append, as the collecting thread may hold any lock."""
    if ctx.loop is not None:
        ctx.engine.left_flows.append(ctx)
    logger.info(
        "flow's coroutine closed unfinished; its run is left as stored",
        extra={"action": "flow_closed_unfinished", "run_id": ctx.run_id, "flow": ctx.flow.name},
    )


def crash_unstartable(engine: Engine, run_id: str, flow_name: str, reason: str) -> None:
    """Record that no process can run ``run_id`` (held by this one): crashed, ``reason``."""
    engine.store.transition(
        run_id,
        RunState.CRASHED,
        "Crashed",
        reason,
        expect=(RunState.RUNNING,),
        owner=None,
    )
    engine.notify()
    logger.error(
        "run cannot be started: %s",
        reason,
        extra={"action": "run_crashed", "run_id": run_id, "flow": flow_name},
    )


def _leave_queued(engine: Engine, run_id: str, flow_name: str, problem: str) -> None:
    """Hand ``run_id`` back to the queue for another process: this one has a ``problem``
    with it (cannot import its flow, or load its parameters) that another may not have."""
    reason = f"process {engine.process_id}: {problem}"
    if engine.store.transition(
        run_id,
        RunState.SCHEDULED,
        "Scheduled",
        f"{reason}; left queued for a worker that can",
        expect=(RunState.RUNNING,),
        expect_owner=engine.process_id,
        owner=None,
    ):
        engine.notify()
        logger.warning(
            "run left queued for a worker that can run it: %s",
            problem,
            extra={"action": "run_left_queued", "run_id": run_id, "flow": flow_name},
        )
