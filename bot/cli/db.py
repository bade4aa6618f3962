"""``signoff db``: the database schema, upgraded on purpose, and old runs deleted.

``serve`` and ``worker`` refuse a database whose schema is older than they need (unless
started with ``--migrate``); ``db upgrade`` brings it up to date, ``db current`` says where
it is. An empty database (the SQLite quick start) gets the schema without asking.
``db prune`` deletes runs that finished long ago; their audit records stay. It keeps the
runs whose events a durable consumer (the Slack bot's) has not read yet, and says so:
``db forget-consumer`` lets a retired bot's go.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from signoff.bot.cli.render import format_time
from signoff.bot.cli.session import CliSession, pass_session
from signoff.bot.cli.times import parse_time


@click.group("db")
def db() -> None:
    """Show or upgrade the database schema; delete old runs."""


@db.command("current")
@pass_session
def current(session: CliSession) -> None:
    """Print the schema revision; exit 1 when it needs an upgrade (or is newer than this
    version of Signoff knows)."""
    from signoff.engine import schema_status  # the migrations: here, not at every start

    status = schema_status(session.settings())
    shown = status.current or (
        "none (empty database)" if status.exists else "none (no database yet)"
    )
    if status.up_to_date:
        click.echo(f"{shown} (up to date)")
        return
    if not status.known:
        click.echo(
            f"{shown} (newer than this version of Signoff knows, whose newest is "
            f"{status.head}: a newer Signoff upgraded it; run that version or a later one)"
        )
        raise click.exceptions.Exit(1)
    click.echo(f"{shown} (needs an upgrade to {status.head}: run 'signoff db upgrade')")
    raise click.exceptions.Exit(1)


@db.command("upgrade")
@pass_session
def upgrade(session: CliSession) -> None:
    """Bring the schema to the newest revision; runs and pauses are kept."""
    from signoff.engine import upgrade_schema

    before, after = upgrade_schema(session.settings())
    if before.current == after.current:
        click.echo(f"{after.current} (already up to date)")
    else:
        click.echo(f"upgraded {before.current or 'an empty database'} -> {after.current}")


@db.command("prune")
@click.option(
    "--finished-before",
    "finished_before",
    required=True,
    callback=parse_time,
    metavar="TIME",
    help="Delete runs that ended before TIME: an age (90d, 12w) or a date (2026-09-01).",
)
@click.option("--dry-run", is_flag=True, help="Say how many runs would go; delete nothing.")
@pass_session
def prune(session: CliSession, finished_before: datetime, dry_run: bool) -> None:
    """Delete runs that finished (completed, failed, cancelled, crashed) before TIME, with
    their inputs, task records, logs and events. Their audit records stay: 'signoff
    audit export' still names who decided what, and 'audit verify' still passes."""
    if finished_before > datetime.now(UTC):
        raise click.BadParameter(
            f"{format_time(finished_before, timespec='minutes')} UTC is in the future: every finished run "
            "would go; give an age (90d) or a past date",
            param_hint="'--finished-before'",
        )
    engine = session.engine()
    count = engine.prune_finished(finished_before, dry_run=dry_run)
    when = f"{format_time(finished_before, timespec='minutes')} UTC"
    if dry_run:
        click.echo(f"{count} run(s) finished before {when} would be deleted (none deleted)")
    else:
        click.echo(f"deleted {count} run(s) finished before {when}; their audit records stay")
    for consumer, kept in engine.runs_kept_for_consumers(finished_before).items():
        # A bot that is down for a while catches up; one retired for good never will.
        click.echo(
            f"{kept} more run(s) finished before {when} are kept until durable consumer "
            f"{consumer!r} reads their events (it posts them to Slack); if nothing will run it "
            f"again (a retired bot), 'signoff db forget-consumer {consumer}' lets them go"
        )


@db.command("forget-consumer")
@click.argument("consumer", metavar="NAME")
@pass_session
def forget_consumer(session: CliSession, consumer: str) -> None:
    """Forget the durable consumer NAME (a retired bot's: 'slack' is the Slack bot's), so
    that 'db prune' deletes the runs whose events it never read. A bot started later starts
    from the present, as a new one does."""
    session.engine().forget_consumer(consumer)
    click.echo(f"forgot durable consumer {consumer!r}; 'db prune' no longer keeps runs for it")
