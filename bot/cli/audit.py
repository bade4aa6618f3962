"""``signoff audit``: check the audit trail's hash chain, and export it.

Example::

    signoff audit verify
    signoff audit export --since 2026-11-01 --flow deploy --format csv > november.csv
"""

from __future__ import annotations

import sys
from datetime import datetime

import click

from signoff.bot.cli.session import CliSession, check_filled, pass_session
from signoff.bot.cli.times import check_range, time_range_options
from signoff.engine import AuditRecordUnreadable


@click.group()
def audit() -> None:
    """Check and export the audit trail (who did what to which run, when, from where)."""


@audit.command("verify")
@pass_session
def verify(session: CliSession) -> None:
    """Check every record's hash and link; exit 1 and say where, if the chain breaks."""
    result = session.engine().verify_audit()
    if result.broken is not None:
        # A key that matches nothing is not evidence of an edit: say which it looks like.
        verdict = "NOT VERIFIED from" if result.broken.key_mismatch else "BROKEN at"
        click.echo(
            f"audit trail {verdict} record {result.broken.seq}: {result.broken.reason} "
            f"({result.checked} records before it are intact)",
            err=True,
        )
        raise click.exceptions.Exit(1)
    click.echo(f"audit trail intact: {result.checked} records, last hash {result.head}")
    if result.unkeyed:
        which = "record 1 was" if result.unkeyed == 1 else f"records 1-{result.unkeyed} were"
        click.echo(f"{which} written before SIGNOFF_AUDIT_KEY was set (hashed without it)")


@audit.command("export")
@time_range_options("records")
@click.option(
    "--flow",
    "flow_name",
    metavar="FLOW",
    callback=check_filled,
    help="Only records about this flow.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="One JSON object per line, or CSV with a header row.",
)
@pass_session
def export(
    session: CliSession,
    since: datetime | None,
    until: datetime | None,
    flow_name: str | None,
    fmt: str,
) -> None:
    """Write audit records to stdout, oldest first, a page at a time (memory stays flat)."""
    check_range(since, until)
    try:
        count = session.engine().export_audit(
            sys.stdout,
            fmt="csv" if fmt == "csv" else "jsonl",
            since=since,
            until=until,
            flow_name=flow_name,
        )
    except AuditRecordUnreadable as exc:
        # Copying its stored text would write a line that is not JSON; nothing is skipped
        # silently either: the export ends there, and says so.
        sys.stdout.flush()
        raise click.ClickException(
            f"{exc}; the export stops before it (the records before it were written)"
        ) from exc
    sys.stdout.flush()
    if session.verbose:
        click.echo(f"exported {count} records", err=True)
