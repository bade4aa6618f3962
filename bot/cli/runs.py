"""``signoff runs``: list, inspect, wait for, answer and cancel runs.

RUN arguments take a run id or a unique prefix of one (as ``runs list`` shows them).

``runs resume`` waits (``--verdict-timeout``) for the flow to judge the answer with its
model, and exits 1 with the model's reasons when the model refused it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import sys
from datetime import datetime
from typing import NoReturn

import click

from signoff.bot.cli.render import JSONValue, detail_text, dump_json, runs_table
from signoff.bot.cli.session import (
    CliSession,
    check_filled,
    check_groups,
    check_person,
    pass_session,
)
from signoff.bot.cli.times import Seconds, check_range, time_range_options
from signoff.bot.cli.wait import (
    Until,
    report_wait,
    say_no_worker,
    timeout_option,
    wait_for_run,
    wait_for_verdict,
)
from signoff.bot.stopping import Terminated
from signoff.engine import PauseStatus, RunNotFound, RunState
from signoff.engine.audit import describe

logger = logging.getLogger(__name__)

#: Final states that make ``runs wait`` exit 1.

_STATES = [state.value for state in RunState]
#: the most runs (or log records) one command prints; a larger number is refused by name
MAX_PAGE = 10_000


def parse_input(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> JSONValue:
    """Parse ``--input``: a JSON object, or nothing.

    Raises:
        click.BadParameter: the text is not JSON (Python's own ``Infinity`` and ``NaN``
            included), not a JSON object, names a field twice, or holds a number too long.
    """
    if raw is None:
        return None
    try:
        value: JSONValue = json.loads(
            raw,
            object_pairs_hook=_fields_once,
            parse_constant=_not_json,
            parse_int=_whole_number,
        )
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise click.BadParameter(f"expected a JSON object like '{{\"approved\": true}}', got {raw}")
    return value


def _fields_once(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """A JSON object's fields, refusing a name that comes twice: JSON parsers keep the last,
    and an answer such as ``{"approve": true, "approve": false}`` has no one meaning."""
    fields: dict[str, JSONValue] = {}
    for name, value in pairs:
        if name in fields:
            raise click.BadParameter(f"the field {name!r} is given twice")
        fields[name] = value
    return fields


def _not_json(word: str) -> NoReturn:
    """Python's json reads ``Infinity``, ``-Infinity`` and ``NaN``; JSON has none of them."""
    raise click.BadParameter(f"{word} is not a JSON number")


def _whole_number(digits: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        raise click.BadParameter(f"a number has more than {limit:,} digits")
    return int(digits)


@click.group()
def runs() -> None:
    """List, inspect, answer and cancel runs."""


@runs.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(_STATES, case_sensitive=False),
    help="Only runs in this state (repeatable).",
)
@click.option(
    "--flow", "flow_name", metavar="FLOW", callback=check_filled, help="Only runs of this flow."
)
@click.option(
    "--started-by",
    metavar="WHO",
    callback=check_filled,
    help="Only runs this person started: a Slack user id (U...) or a CLI operator name.",
)
@click.option(
    "--answered-by",
    metavar="WHO",
    callback=check_filled,
    help="Only runs this person gave an answer to (a Slack user id or a CLI operator name).",
)
@time_range_options("runs created")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_PAGE),
    default=50,
    show_default=True,
    help="At most N runs (--before pages on).",
)
@click.option(
    "--before",
    metavar="RUN",
    help="The next page: runs listed after RUN (the last run of the previous page).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_session
def list_runs(
    session: CliSession,
    states: tuple[str, ...],
    flow_name: str | None,
    started_by: str | None,
    answered_by: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List the newest runs, filtered, a page at a time.

    A full page ends with the command for the next one (on stderr), which adds
    --before with the page's last run.
    """
    check_range(since, until)
    engine = session.engine()
    after = None
    if before is not None:
        try:
            after = engine.get_run(before)
        except RunNotFound as exc:
            problem = f"no run {before!r}"
            if exc.several:
                problem = f"more than one run id starts with {before!r}"
            raise click.BadParameter(
                f"{problem} (give a run id, or a unique prefix of one)", param_hint="'--before'"
            ) from None
    wanted = [RunState(state.lower()) for state in states] or None
    # One more than shown: whether a next page exists is known without a second query.
    found = engine.list_runs(
        wanted,
        flow_name,
        limit + 1,
        after,
        started_by=started_by,
        answered_by=answered_by,
        since=since,
        until=until,
    )
    page = found[:limit]
    click.echo(dump_json(page) if as_json else runs_table(page))
    if len(found) > limit:
        # Times as the instants they were resolved to, so "--since 2h" does not drift.
        given: list[tuple[str, str | None]] = [("--state", s) for s in states]
        given += [
            ("--flow", flow_name),
            ("--started-by", started_by),
            ("--answered-by", answered_by),
            ("--since", since.isoformat() if since else None),
            ("--until", until.isoformat() if until else None),
            ("--limit", str(limit) if limit != 50 else None),
            ("--before", page[-1].id),
        ]
        words = [click.get_current_context().command_path]
        words += [f"{name} {shlex.quote(value)}" for name, value in given if value is not None]
        click.echo(f"more: {' '.join(words)}{' --json' if as_json else ''}", err=True)


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--tail",
    type=click.IntRange(min=0, max=MAX_PAGE),
    default=20,
    show_default=True,
    help="How many of the last log records to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_session
def show(session: CliSession, run_id: str, tail: int, as_json: bool) -> None:
    """Show a run: parameters, state history, tasks, pauses and the log tail."""
    engine = session.engine()
    detail = engine.detail(run_id)
    trail = engine.audit_trail(detail.run.id)
    if as_json:
        logs = detail.logs[-tail:] if tail else ()
        shown = json.loads(dump_json(dataclasses.replace(detail, logs=logs)))
        shown["audit"] = [record.as_dict() for record in trail]
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        click.echo(detail_text(detail, tail))
        click.echo("\nAudit trail")
        click.echo("\n".join(f"  {describe(r)}" for r in trail) or "  (none)")


@runs.command("wait")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--until",
    type=click.Choice(["paused", "finished"]),
    default="finished",
    show_default=True,
    help="Stop waiting when the run pauses for input, or only when it finishes.",
)
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON only.")
@pass_session
def wait(
    session: CliSession, run_id: str, until: Until, timeout: float | None, as_json: bool
) -> None:
    """Wait for a run to pause or finish; print its state; exit 1 if it did not complete
    (124 if --timeout ran out first)."""
    engine = session.engine()
    found = engine.get_run(run_id)
    final = wait_for_run(engine, found.id, until, on_no_worker=say_no_worker, timeout=timeout)
    report_wait(final, until, as_json=as_json, timeout=timeout)


@runs.command("resume")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--input",
    "run_input",
    metavar="JSON",
    callback=parse_input,
    help="The answer, a JSON object (omit it for a pause that takes no input).",
)
@click.option(
    "--as",
    "responder",
    metavar="NAME",
    callback=check_person,
    help="Who answers (default: SIGNOFF_OPERATOR, or your login name); recorded as the CLI.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="GROUP",
    callback=check_groups,
    help="A user group the responder belongs to, for pauses that name groups (repeatable).",
)
@click.option(
    "--verdict-timeout",
    type=Seconds(86_400),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the flow to accept or refuse the answer.",
)
@pass_session
def resume(
    session: CliSession,
    run_id: str,
    run_input: dict[str, JSONValue] | None,
    responder: str | None,
    groups: tuple[str, ...],
    verdict_timeout: float,
) -> None:
    """Answer the input a waiting run asks for, as a named local operator.

    The answer is first checked against the input's schema (an error names each field and
    nothing is stored). Then the flow judges it with its model; this waits for that
    verdict, and exits 1 with the model's reasons if it refused the answer. The answer is
    recorded as coming from the command line, with the groups given.
    """
    engine = session.engine()
    pause = engine.resume(run_id, run_input, engine.operator(responder, groups))
    who = f" as {pause.answers[-1].responder}" if pause.answers else ""
    if pause.status is PauseStatus.WAITING:
        click.echo(
            f"recorded answer {len(pause.answers)} of {pause.quorum} for {pause.run_id} "
            f"(input {pause.key!r}){who}; it waits for more"
        )
        return
    judged = pause if pause.status is not PauseStatus.ANSWERED else None
    try:
        if judged is None:
            logger.info(
                "answer stored; waiting up to %gs for the flow to judge it",
                verdict_timeout,
                extra={"action": "verdict_wait", "run_id": pause.run_id, "key": pause.key},
            )
            judged = wait_for_verdict(engine, pause, verdict_timeout)
    except (KeyboardInterrupt, Terminated):
        # Stopped in the wait (up to 30 s, longer than people wait at a prompt): without
        # this, nothing said whether the answer counted, and answering again is refused.
        click.echo(
            f"stored the answer to {pause.run_id} (input {pause.key!r}){who}; stopped "
            "before the flow judged it: see `signoff runs show`",
            err=True,
        )
        raise
    if judged.status is PauseStatus.REJECTED:
        reasons = "; ".join(f"{k or 'input'}: {v}" for k, v in judged.errors.items())
        click.echo(
            f"error: the flow refused the answer to {pause.run_id} (input {pause.key!r}){who}: "
            f"{reasons or 'its model refused it'}",
            err=True,
        )
        raise click.exceptions.Exit(1)
    if judged.status is PauseStatus.ACCEPTED:
        click.echo(f"resumed {pause.run_id} (input {pause.key!r}){who}; the flow accepted it")
        return
    click.echo(f"resumed {pause.run_id} (input {pause.key!r}){who}")
    click.echo(
        f"note: the flow has not judged the answer within {verdict_timeout:g}s "
        "(is a worker running?); see `signoff runs show`",
        err=True,
    )


@runs.command("reassign")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--to", "to", required=True, metavar="ID", callback=check_person, help="Who to hand it to."
)
@click.option(
    "--as",
    "by",
    metavar="NAME",
    callback=check_person,
    help="Who hands it over (default: the operator).",
)
@pass_session
def reassign(session: CliSession, run_id: str, to: str, by: str | None) -> None:
    """Hand the decision a run waits on to someone else."""
    engine = session.engine()
    pause = engine.reassign(run_id, to, engine.operator(by))
    click.echo(f"input {pause.key!r} of {pause.run_id} is now {to}'s to answer")


@runs.command("cancel")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--as",
    "by",
    metavar="NAME",
    callback=check_person,
    help="Who cancels (default: SIGNOFF_OPERATOR, or your login name); recorded as the CLI.",
)
@pass_session
def cancel(session: CliSession, run_id: str, by: str | None) -> None:
    """Cancel a run that has not finished."""
    engine = session.engine()
    actor = engine.operator(by)
    run = engine.cancel(run_id, actor)
    click.echo(f"cancelled {run.id} by {actor.id}")
