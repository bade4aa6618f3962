"""Requests to suspend another run: ``suspend_flow_run(flow_run_id=...)`` stores one,
and the asked run honours it at its next boundary (a task call, flow call or pause, or
where it returns or raises if it meets none first), as Prefect's does.

The request's key is the ``key=`` given or a fresh ``suspend-<hex>``, outside the run's
counter, so the run's own keys do not shift on the re-run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from signoff.engine.asking import Decision, PauseRequest, check_arguments
from signoff.engine.context import RunContext
from signoff.engine.errors import CannotSuspend, StoreError, UnstorableValue
from signoff.engine.input import run_input_from_type
from signoff.engine.input_schema import input_schema
from signoff.engine.runs import Pause, RunState
from signoff.engine.serialization import storable_text
from signoff.engine.signals import Suspend
from signoff.engine.waiting import SUSPEND_REQUEST, suspend_here

logger = logging.getLogger(__name__)


def suspend_at_boundary(ctx: RunContext) -> None:
    """Suspend the run here if someone asked for it with ``suspend_flow_run(flow_run_id=)``.

    Called before each task call, flow call and pause. Costs nothing unless this process
    heard of a request for this run; a request a re-run already passed is skipped.
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
        pause = Pause.waiting(
            run_id,
            key,
            now,
            timeout,
            suspend=True,
            schema=request.get("schema"),
            title=request.get("title"),
            description=request.get("description"),
            initial={},
            approvers=tuple(request.get("approvers") or ctx.flow.approvers),
            forbid_starter=bool(request.get("forbid_starter", ctx.flow.forbid_starter)),
            quorum=int(request.get("quorum") or 1),
            veto=request.get("veto"),
            escalate_at=(
                now + timedelta(seconds=float(request["escalate_after"]))
                if request.get("escalate_after") is not None
                else None
            ),
            escalate_to=tuple(request.get("escalate_to") or ()),
            notify=str(request.get("notify") or "channel"),
            confirm=bool(
                request["confirm"] if request.get("confirm") is not None else ctx.flow.confirm
            ),
        )
        engine.forget_suspend_request(run_id, name)
        suspend_here(PauseRequest(ctx, key, None, timeout, pause, is_new=True))


def suspend_at_end(ctx: RunContext) -> None:
    """The flow returned: a request to suspend it (``suspend_flow_run(flow_run_id=)``)
    that met no task call or pause is honoured here, as Prefect's flow return is a
    suspension boundary, rather than dropped by a run that ends. Costs nothing without one.

    Raises:
        Suspend: there was a request; the run is stored as suspended.
    """
    if not ctx.engine.suspend_requests(ctx.run_id):
        return
    try:
        suspend_at_boundary(ctx)
    except UnstorableValue as exc:
        # The flow did its work: it ends as it would have, rather than fail for a request
        # it cannot honour (a value a re-run needs cannot be stored; the error names it).
        logger.warning(
            "suspend request not honoured: %s",
            exc,
            extra={"action": "suspend_request_dropped", "run_id": ctx.run_id},
        )


def suspended_instead(ctx: RunContext, exc: BaseException) -> BaseException:
    """The flow raised ``exc``: with a request to suspend it pending, the run suspends (a
    ``Suspend`` is returned to record instead of the failure), as with Prefect, whose
    exception is a suspension boundary too. A signal, or no request: ``exc`` itself."""
    if not isinstance(exc, Exception) or isinstance(exc, StoreError):
        return exc
    try:
        suspend_at_end(ctx)
    except Suspend as suspend:
        return suspend
    except StoreError:
        raise
    except Exception:
        # Whatever else stopped the suspend, the run fails with the flow's own error,
        # which is the one its author needs to see.
        return exc
    return exc


def request_suspend(
    run_id: str,
    wait_for_input: Any,
    timeout: float | None,
    key: str | None,
    decision: Decision,
) -> None:
    from signoff.engine.runtime import get_engine

    check_arguments(timeout, key)
    engine = get_engine()
    run = engine.get_run(run_id)
    parent = engine.store.parent_run(run.id)
    if parent is not None:
        # Refused here, as Prefect refuses ("Cannot suspend subflows"): accepted, it could
        # only be dropped at the run's next boundary, unseen by whoever asked.
        raise CannotSuspend(
            run.id,
            f"its flow {run.flow_name!r} was called from the flow of run {parent}, and only "
            f"that outermost run can be run again from the start; suspend run {parent}",
        )
    model = run_input_from_type(wait_for_input) if wait_for_input is not None else None
    decision.check(model)
    schema = input_schema(model) if model is not None else None
    key = key or f"suspend-{uuid.uuid4().hex[:12]}"
    request = {
        "schema": schema,
        "title": schema.get("title") if schema else None,
        # written out as the run's own pause writes it: PostgreSQL's text cannot hold NUL,
        # and the write that failed would be the asked run's, at its next boundary
        "description": (
            storable_text(model.signoff_description)
            if model is not None and model.signoff_description
            else None
        ),
        "timeout": timeout,
        "approvers": list(decision.approvers) if decision.approvers is not None else None,
        **(
            {"forbid_starter": decision.forbid_starter}
            if decision.forbid_starter is not None
            else {}
        ),
        # who decides, as for the run's own pauses (the flow's confirm when not given)
        "quorum": decision.quorum,
        "veto": decision.veto,
        "escalate_after": decision.escalate_after,
        "escalate_to": list(decision.escalate_to),
        "notify": decision.notify,
        "confirm": decision.confirm,
    }
    if not engine.store.request_suspend(run.id, SUSPEND_REQUEST, key, request):
        current = engine.store.get_run(run.id).state
        if current is not RunState.RUNNING:
            # CannotSuspend is a RuntimeError, as Prefect's refusal here is.
            raise CannotSuspend(run.id, f"it is {current.value}, not running")
        unmet = engine.store.unmet_suspend_request(run.id, SUSPEND_REQUEST) or key
        raise ValueError(
            f"run {run.id} already has a request to suspend with key {unmet!r}, not met "
            "yet: the run suspends once, at its next task call, flow call or pause (or its end)"
        )
    # The run may be this process's: it must not end before the request's event comes back.
    engine.heard_suspend_request(run.id, SUSPEND_REQUEST + key)
    engine.notify()
    logger.info(
        "suspend requested",
        extra={"action": "suspend_requested", "run_id": run.id, "key": key},
    )
