"""The ``runs`` commands on a ``Backend`` other than the embedded engine (``--backend
prefect``): each goes through the interface the Slack side uses, so an answer given here is
checked, claimed, recorded and refused exactly as one given in a Slack form is.

``runs.py`` parses the options and prints alike for both backends; what it asks of the
Prefect server is here. Only what the ``Backend`` interface offers is available: filters
and waits that only Signoff's engine records (who answered a run, when it was created,
the flow's verdict on an answer) are refused by name in ``runs.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping

import click

from signoff.bot.backends import (
    JSON,
    Accepted,
    Actor,
    AuditRecord,
    Backend,
    Denied,
    Refused,
    Run,
    RunState,
    Stale,
    Via,
)
from signoff.bot.cli.json_input import exact_numbers
from signoff.bot.cli.wait import RECHECK_SECONDS, ReadOutage
from signoff.bot.errors import BackendUnavailable, CredentialsRefused, RunNotFound
from signoff.engine import Actor as EngineActor
from signoff.engine.audit import AuditRecord as EngineAuditRecord
from signoff.engine.audit import describe

logger = logging.getLogger(__name__)


def operator(name: str | None, groups: Collection[str] = ()) -> Actor:
    """The CLI's local operator, as the engine names it: ``name``, ``SIGNOFF_OPERATOR``,
    or the login name; recorded as coming from the command line."""
    # Imported here: the settings classes load pydantic-settings, which `signoff --help`
    # does without (tests/cli/test_startup.py).
    from signoff.engine import EngineSettings

    who = EngineActor.operator(name or EngineSettings.load().operator, groups=tuple(groups))
    return Actor(who.id, name=who.name, via=Via.CLI, groups=frozenset(groups))


def run_named(backend: Backend, run_id: str, option: str | None = None) -> Run:
    """The run ``run_id`` (or a unique prefix of its id) names.

    Raises:
        click.BadParameter: with ``option``, when no run (or several) match.
        RunNotFound: without ``option``.
    """
    try:
        return backend.get_run(run_id)
    except RunNotFound as exc:
        if option is None:
            raise
        problem = f"no run {run_id!r}"
        if exc.several:
            problem = f"more than one run id starts with {run_id!r}: {exc.choices}"
        raise click.BadParameter(
            f"{problem} (give a run id, or a unique prefix of one)", param_hint=f"'{option}'"
        ) from None


def audit_line(record: AuditRecord) -> str:
    """One line of the audit trail, worded as the engine's records are (``describe``)."""
    return describe(
        EngineAuditRecord(
            seq=0,
            at=record.at,
            action=record.action,
            run_id=record.run_id,
            flow_name=None,
            actor_id=record.actor_id,
            actor_name=record.actor_name,
            via=record.via,
            key=record.key,
            data=dict(record.data),
            prev_hash="",
            hash="",
        )
    )


def resume(backend: Backend, run_id: str, values: Mapping[str, JSON] | None, by: Actor) -> str:
    """Answer the request ``run_id`` waits on with ``values``, through ``Backend.answer``.

    Returns:
        What to print: the run resumed, as whom.

    Raises:
        click.ClickException: the run waits for no input, the answer breaks its schema
            (every field's error named; nothing was stored), it was answered or closed
            meanwhile, or the rules do not let ``by`` answer it.
        click.BadParameter: ``--input`` given for a request that takes none.
    """
    run = backend.get_run(run_id)
    pause = backend.waiting_pause(run.id)
    if pause is None:
        raise click.ClickException(
            f"run {run.id} is {run.state.value} ({run.state_name}) and does not wait for input"
        )
    if values is not None and not pause.wants_input:
        raise click.BadParameter(
            f"input {pause.key!r} of run {run.id} takes no input; leave --input out",
            param_hint="'--input'",
        )
    answer = exact_numbers(values or {}, pause.schema)
    outcome = backend.answer(run.id, pause.key, answer, responder=by)
    if isinstance(outcome, Refused):
        detail = "; ".join(f"{k or '(input)'}: {v}" for k, v in outcome.errors.items())
        raise click.ClickException(f"input for run {run.id} rejected: {detail}")
    if isinstance(outcome, Denied):
        allowed = outcome.refusal.allowed
        who = f" (who may: {', '.join(allowed)})" if allowed else ""
        raise click.ClickException(
            f"{by.id} may not answer run {run.id}: {outcome.refusal.reason}{who}"
        )
    if isinstance(outcome, Stale):
        raise click.ClickException(outcome.reason)
    assert isinstance(outcome, Accepted)
    return f"resumed {run.id} (input {pause.key!r}) as {by.id}"


def reassign(backend: Backend, run_id: str, to: str, by: Actor) -> str:
    """Hand the request ``run_id`` waits on to ``to``; what to print."""
    run = backend.get_run(run_id)
    waiting = backend.waiting_pause(run.id)
    if waiting is None:
        raise click.ClickException(
            f"run {run.id} is {run.state.value} ({run.state_name}) and does not wait for input"
        )
    pause = backend.reassign(run.id, to, by, key=waiting.key)
    return f"input {pause.key!r} of {pause.run_id} is now {to}'s to answer"


def cancel(backend: Backend, run_id: str, by: Actor) -> str:
    """Cancel the run as ``by``; what to print (Prefect may first show it Cancelling, while
    the run's process is told to stop)."""
    found = backend.cancel(run_id, by=by)
    if found.state is RunState.CANCELLED:
        return f"cancelled {found.id} by {by.id}"
    return f"cancelling {found.id} by {by.id} (it is {found.state_name} until its process stops)"


def wait_for_run(backend: Backend, run_id: str, until: str, timeout: float | None) -> Run:
    """Read the run every ``RECHECK_SECONDS`` until it is final (or, with ``until``
    "paused", waits for input that can be given), or ``timeout`` seconds have passed; as
    it is then.

    A Prefect flow pauses first and stores its input's schema just after: until it has,
    the run is paused but nothing can answer it, so a ``runs resume`` right after the
    wait would find nothing to answer. The wait ends once the request can be read.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    outage = ReadOutage(run_id, deadline)
    idle = threading.Event()  # never set: a wait that a Ctrl-C still interrupts
    while True:
        try:
            run = backend.get_run(run_id)
            asking = (
                until == "paused"
                and run.state.is_waiting
                and backend.waiting_pause(run.id) is not None
            )
        except BackendUnavailable as exc:
            # Refused credentials are a setting to mend, not an outage to wait out.
            if isinstance(exc, CredentialsRefused) or outage.failed(exc):
                raise
            idle.wait(RECHECK_SECONDS)
            continue
        outage.over()
        if run.state.is_final or asking or (deadline is not None and time.monotonic() >= deadline):
            return run
        wait = RECHECK_SECONDS
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
        idle.wait(wait)


__all__ = [
    "audit_line",
    "cancel",
    "operator",
    "reassign",
    "resume",
    "run_named",
    "wait_for_run",
]
