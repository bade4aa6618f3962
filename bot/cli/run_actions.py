"""``signoff runs resume``, ``reassign`` and ``cancel``: the commands that act on a run
as a named operator (``--as``, with the user groups it is in: ``--group``), on Signoff's
engine or, with ``--backend prefect``, on the Prefect server at ``PREFECT_API_URL``.

``runs resume`` waits (``--verdict-timeout``) for the flow to judge the answer with its
model, and exits 1 with the model's reasons when the model refused it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from signoff.bot.cli import on_backend
from signoff.bot.cli.backend import (
    BackendName,
    not_on_prefect,
    on_which_backend,
    prefect_for_command,
)
from signoff.bot.cli.json_input import exact_numbers, parse_input
from signoff.bot.cli.render import JSONValue
from signoff.bot.cli.session import (
    CliSession,
    check_acting_run,
    check_groups,
    check_one_person,
    check_person,
    pass_session,
)
from signoff.bot.cli.times import Seconds
from signoff.bot.cli.wait import Verdict, report_verdict, wait_for_verdict
from signoff.bot.stopping import Terminated
from signoff.engine import EngineError, PauseStatus

if TYPE_CHECKING:
    # the engine's classes only as types: importing them loads the database layer
    from signoff.engine import Engine, Pause

logger = logging.getLogger(__name__)

#: a command, before and after an option decorates it
FC = TypeVar("FC", bound=Callable[..., object])


def operator_options(dest: str, who: str) -> Callable[[FC], FC]:
    """``--as NAME`` (into ``dest``) and ``--group GROUP``: the local operator who ``who``
    (answers, cancels, ...), and the user groups they are in, for pauses that name groups:
    whoever may answer may also cancel or hand it on."""

    def decorate(command: FC) -> FC:
        command = click.option(
            "--group",
            "groups",
            multiple=True,
            metavar="GROUP",
            callback=check_groups,
            help=f"A user group the operator who {who} belongs to, for pauses that name "
            "groups (repeatable).",
        )(command)
        return click.option(
            "--as",
            dest,
            metavar="NAME",
            callback=check_person,
            help=f"Who {who} (default: SIGNOFF_OPERATOR, or your login name); recorded as the CLI.",
        )(command)

    return decorate


@click.command("resume")
@click.argument("run_id", metavar="RUN", callback=check_acting_run)
@click.option(
    "--input",
    "run_input",
    metavar="JSON",
    callback=parse_input,
    help="The answer, a JSON object (omit it for a pause that takes no input).",
)
@operator_options("responder", "answers")
@click.option(
    "--verdict-timeout",
    type=Seconds(86_400),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the flow to accept or refuse the answer (not with Prefect).",
)
@on_which_backend
@pass_session
def resume(
    session: CliSession,
    run_id: str,
    run_input: dict[str, JSONValue] | None,
    responder: str | None,
    groups: tuple[str, ...],
    verdict_timeout: float,
    backend_name: BackendName,
) -> None:
    """Answer the input a waiting run asks for, as a named local operator.

    The answer is first checked against the input's schema (an error names each field and
    nothing is stored). Then the flow judges it with its model; this waits for that
    verdict, and exits 1 with the model's reasons if it refused the answer. The answer is
    recorded as coming from the command line, with the groups given.

    With --backend prefect the answer goes through the same check and claim as a Slack
    form's, then Prefect resumes the run; Prefect reports no verdict, so none is awaited.
    """
    if backend_name == "prefect":
        source = click.get_current_context().get_parameter_source("verdict_timeout")
        if source is not click.core.ParameterSource.DEFAULT:
            raise not_on_prefect(
                "--verdict-timeout",
                "Prefect does not report whether the flow accepted an answer; the run's "
                "logs and state (`signoff runs show --backend prefect RUN`) show what it did",
            )
        backend = prefect_for_command(session)
        actor = on_backend.operator(responder, groups)
        click.echo(on_backend.resume(backend, run_id, run_input, actor))
        return
    engine = session.engine()
    if run_input is not None:
        waiting = _waiting_pause(engine, run_id)
        run_input = exact_numbers(run_input, waiting.schema if waiting else None)
    pause = engine.resume(run_id, run_input, engine.operator(responder, groups))
    who = f" as {pause.answers[-1].responder}" if pause.answers else ""
    if pause.status is PauseStatus.WAITING:
        click.echo(
            f"recorded answer {len(pause.answers)} of {pause.quorum} for {pause.run_id} "
            f"(input {pause.key!r}){who}; it waits for more"
        )
        return
    verdict = Verdict(pause)
    try:
        if pause.status is PauseStatus.ANSWERED:
            logger.info(
                "answer stored; waiting up to %gs for the flow to judge it",
                verdict_timeout,
                extra={"action": "verdict_wait", "run_id": pause.run_id, "key": pause.key},
            )
            verdict = wait_for_verdict(engine, pause, verdict_timeout)
    except (KeyboardInterrupt, Terminated):
        # Stopped in the wait (up to 30 s, longer than people wait at a prompt): without
        # this, nothing said whether the answer counted, and answering again is refused.
        click.echo(
            f"stored the answer to {pause.run_id} (input {pause.key!r}){who}; stopped "
            "before the flow judged it: see `signoff runs show`",
            err=True,
        )
        raise
    report_verdict(pause, verdict, who, verdict_timeout)


@click.command("reassign")
@click.argument("run_id", metavar="RUN", callback=check_acting_run)
@click.option(
    "--to", "to", required=True, metavar="ID", callback=check_one_person, help="Who to hand it to."
)
@operator_options("by", "hands it over")
@on_which_backend
@pass_session
def reassign(
    session: CliSession,
    run_id: str,
    to: str,
    by: str | None,
    groups: tuple[str, ...],
    backend_name: BackendName,
) -> None:
    """Hand the decision a run waits on to someone else."""
    if backend_name == "prefect":
        backend = prefect_for_command(session)
        click.echo(on_backend.reassign(backend, run_id, to, on_backend.operator(by, groups)))
        return
    engine = session.engine()
    pause = engine.reassign(run_id, to, engine.operator(by, groups))
    click.echo(f"input {pause.key!r} of {pause.run_id} is now {to}'s to answer")


@click.command("cancel")
@click.argument("run_id", metavar="RUN", callback=check_acting_run)
@operator_options("by", "cancels")
@on_which_backend
@pass_session
def cancel(
    session: CliSession,
    run_id: str,
    by: str | None,
    groups: tuple[str, ...],
    backend_name: BackendName,
) -> None:
    """Cancel a run that has not finished."""
    if backend_name == "prefect":
        backend = prefect_for_command(session)
        click.echo(on_backend.cancel(backend, run_id, on_backend.operator(by, groups)))
        return
    engine = session.engine()
    actor = engine.operator(by, groups)
    run = engine.cancel(run_id, actor)
    click.echo(f"cancelled {run.id} by {actor.id}")


def _waiting_pause(engine: Engine, run_id: str) -> Pause | None:
    """The pause run ``run_id`` (or a prefix) waits on, for its schema; None when there is
    none or the run cannot be read, which ``Engine.resume`` then reports."""
    try:
        run = engine.get_run(run_id)
    except EngineError:
        return None
    return engine.waiting_pause(run.id)
