"""``signoff db``: the database schema, upgraded on purpose.

``serve`` and ``worker`` refuse a database whose schema is older than they need (unless
started with ``--migrate``); ``db upgrade`` brings it up to date, ``db current`` says where
it is. An empty database (the SQLite quick start) gets the schema without asking.
"""

from __future__ import annotations

import click

from signoff.bot.cli.session import CliSession, pass_session


@click.group("db")
def db() -> None:
    """Show or upgrade the database schema."""


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
