"""``signoff runs``: list, inspect, wait for, answer and cancel runs.

RUN arguments take a run id or a unique prefix of one (as ``runs list`` shows them); the
commands that act on a run (resume, reassign, cancel) take at least ``MIN_ACTING_PREFIX``
(4) characters of it (``bot.backends.run_ids``).

The commands that act on a run as an operator live in ``run_actions``.

Each command takes ``--backend prefect`` to act on the Prefect server at
``PREFECT_API_URL`` instead (``on_backend``); options only Signoff's engine can honour are
then refused by name.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from datetime import datetime

import click

from signoff.bot.backends import RunState as BackendRunState
from signoff.bot.cli import on_backend
from signoff.bot.cli.backend import (
    BackendName,
    not_on_prefect,
    on_which_backend,
    prefect_for_command,
)
from signoff.bot.cli.render import (
    JSONValue,
    Run,
    RunDetail,
    detail_text,
    dump_json,
    jsonable,
    runs_table,
)
from signoff.bot.cli.run_actions import cancel, reassign, resume
from signoff.bot.cli.session import (
    CliSession,
    check_filled,
    pass_session,
)
from signoff.bot.cli.times import check_range, time_range_options
from signoff.bot.cli.wait import (
    Until,
    report_wait,
    say_no_worker,
    timeout_option,
    wait_for_run,
)
from signoff.engine import AuditRecord, RunNotFound, RunState
from signoff.engine.audit import describe

#: what ``runs list --state`` takes
_STATES = [state.value for state in RunState]
#: the most runs (or log records) one command prints; a larger number is refused by name
MAX_PAGE = 10_000


def _embedded_only(given: dict[str, object], why: str) -> None:
    """Refuse, by name, the first option in ``given`` (option -> value) that is set: the
    Prefect backend has nothing to do it with."""
    for option, value in given.items():
        if value not in (None, False, (), ""):
            raise not_on_prefect(option, why)


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
@on_which_backend
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
    backend_name: BackendName,
) -> None:
    """List the newest runs, filtered, a page at a time.

    A full page ends with the command for the next one (on stderr), which adds
    --before with the page's last run. With --backend prefect, --state, --flow (a flow,
    or FLOW/DEPLOYMENT's flow), --limit and --before filter and page Prefect's runs.
    """
    check_range(since, until)
    found: Sequence[Run]
    if backend_name == "prefect":
        _embedded_only(
            {
                "--started-by": started_by,
                "--answered-by": answered_by,
                "--since": since,
                "--until": until,
            },
            "Prefect cannot filter its runs by it",
        )
        backend = prefect_for_command(session)
        last = on_backend.run_named(backend, before, "--before").id if before else None
        # One more than shown: whether a next page exists is known without a second query.
        found = backend.list_runs(
            [BackendRunState(s.lower()) for s in states] or None,
            flow_name=flow_name,
            limit=limit + 1,
            before=last,
        )
    else:
        found = _engine_page(
            session, states, flow_name, started_by, answered_by, since, until, limit, before
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
            ("--backend", backend_name if backend_name != "embedded" else None),
        ]
        words = [_next_page_command(click.get_current_context())]
        words += [f"{name} {shlex.quote(value)}" for name, value in given if value is not None]
        click.echo(f"more: {' '.join(words)}{' --json' if as_json else ''}", err=True)


def _next_page_command(ctx: click.Context) -> str:
    """``signoff runs list`` with the options given to ``signoff`` itself: without the
    ``--database-url`` typed for this page, the next one would read another database. A
    password in it is masked, as ``config show`` does: this line goes to logs too."""
    from signoff.bot.cli.config import mask

    root = ctx.find_root()
    words = [root.info_name or "signoff"]
    if root.params.get("verbose"):
        words.append("-v")
    url = root.params.get("database_url")
    if url and root.get_parameter_source("database_url") is click.core.ParameterSource.COMMANDLINE:
        words.append(f"--database-url {shlex.quote(mask('SIGNOFF_DATABASE_URL', url))}")
    path = ctx.command_path.split()[1:]  # after the program's name
    return " ".join(words + path)


def _engine_page(
    session: CliSession,
    states: tuple[str, ...],
    flow_name: str | None,
    started_by: str | None,
    answered_by: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before: str | None,
) -> Sequence[Run]:
    """Up to ``limit`` + 1 runs of Signoff's engine, filtered, after ``before``."""
    engine = session.engine()
    after = None
    if before is not None:
        try:
            after = engine.get_run(before)
        except RunNotFound as exc:
            problem = f"no run {before!r}"
            if exc.several:
                problem = f"more than one run id starts with {before!r}: {exc.choices}"
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
    if not found and flow_name is not None and not engine.list_runs(flow_name=flow_name, limit=1):
        # A typo in the flow's name read as "no runs" in the states asked for.
        click.echo(f"note: no run of a flow named {flow_name!r} is stored", err=True)
    return found


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
@on_which_backend
@pass_session
def show(
    session: CliSession, run_id: str, tail: int, as_json: bool, backend_name: BackendName
) -> None:
    """Show a run: parameters, state history, tasks, pauses (what a waiting one's input
    holds, who answered) and the log tail, then its audit trail."""
    detail: RunDetail
    audit: list[JSONValue]
    if backend_name == "prefect":
        backend = prefect_for_command(session)
        detail = backend.detail(run_id)
        trail = backend.audit_trail(detail.run.id)
        audit = [jsonable(record) for record in trail]
        lines = [on_backend.audit_line(record) for record in trail]
    else:
        engine = session.engine()
        try:
            detail = engine.detail(run_id)
        except RunNotFound as exc:
            # ``db prune`` deleted it: its audit records are all that is kept, by whole id.
            pruned = [] if exc.several else engine.audit_trail(run_id)
            if not pruned:
                raise
            _show_pruned(run_id, [record.as_dict() for record in pruned], pruned, as_json)
            return
        engine_trail = engine.audit_trail(detail.run.id)
        audit = [record.as_dict() for record in engine_trail]
        lines = [describe(record) for record in engine_trail]
    if as_json:
        logs = detail.logs[-tail:] if tail else ()
        shown = json.loads(dump_json(dataclasses.replace(detail, logs=logs)))  # type: ignore[arg-type]
        shown["audit"] = audit
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        click.echo(detail_text(detail, tail))
        click.echo("\nAudit trail")
        click.echo("\n".join(f"  {line}" for line in lines) or "  (none)")


def _show_pruned(
    run_id: str, audit: list[JSONValue], trail: Sequence[AuditRecord], as_json: bool
) -> None:
    if as_json:
        click.echo(json.dumps({"id": run_id, "pruned": True, "audit": audit}, indent=2))
        return
    click.echo(
        f"Run {run_id} was deleted by 'signoff db prune' (it had finished); only its audit "
        "trail is kept"
    )
    click.echo("\nAudit trail")
    click.echo("\n".join(f"  {describe(record)}" for record in trail))


@runs.command("wait")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--until",
    type=click.Choice(["paused", "finished"]),
    default="finished",
    show_default=True,
    help="Stop waiting when the run pauses for input (or a flow it called does: that "
    "run is printed), or only when it finishes.",
)
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON only.")
@on_which_backend
@pass_session
def wait(
    session: CliSession,
    run_id: str,
    until: Until,
    timeout: float | None,
    as_json: bool,
    backend_name: BackendName,
) -> None:
    """Wait for a run to pause or finish; print its state; exit 1 if it did not complete
    (124 if --timeout ran out first)."""
    if backend_name == "prefect":
        backend = prefect_for_command(session)
        run = backend.get_run(run_id)
        report_wait(
            on_backend.wait_for_run(backend, run.id, until, timeout),
            until,
            as_json=as_json,
            timeout=timeout,
        )
        return
    engine = session.engine()
    found = engine.get_run(run_id)
    final = wait_for_run(engine, found.id, until, on_no_worker=say_no_worker, timeout=timeout)
    report_wait(final, until, as_json=as_json, timeout=timeout)


for command in (resume, reassign, cancel):
    runs.add_command(command)
