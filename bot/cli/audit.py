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


def parse_heads(
    _ctx: click.Context, _param: click.Parameter, given: tuple[str, ...]
) -> dict[int, str]:
    """``--head SEQ:HASH`` (repeatable): record number -> the hash it must still have.

    Raises:
        click.BadParameter: not a record number and a 64-digit hex hash, or a number twice.
    """
    heads: dict[int, str] = {}
    for text in given:
        seq, _, digest = text.strip().partition(":")
        digest = digest.lower()
        if not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or not _is_hex(digest):
            raise click.BadParameter(
                f"{text!r} is not SEQ:HASH (a record number, a colon and the 64 hex digits "
                "'audit verify' printed as the last hash)"
            )
        if int(seq) in heads and heads[int(seq)] != digest:
            raise click.BadParameter(f"record {int(seq)} is given twice, with two hashes")
        heads[int(seq)] = digest
    return heads


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@audit.command("verify")
@click.option(
    "--head",
    "heads",
    multiple=True,
    metavar="SEQ:HASH",
    callback=parse_heads,
    help="A record and its hash from an earlier check, kept elsewhere: fail unless the "
    "trail still holds it (the chain alone cannot show that its newest records were "
    "deleted). Repeatable.",
)
@click.option(
    "--keyed",
    is_flag=True,
    help="Fail unless every record is hashed with SIGNOFF_AUDIT_KEY. Without it, records "
    "written before the key was set pass, and so would a trail rewritten without the key.",
)
@pass_session
def verify(session: CliSession, heads: dict[int, str], keyed: bool) -> None:
    """Check every record's hash and link; exit 1 and say where, if the chain breaks.

    Also fails when a run has no record of its start, or a --head record is gone or
    changed. Keep the SEQ:HASH it prints (posted somewhere else, daily, say) and pass it
    to a later check with --head.
    """
    if keyed and session.settings().audit_key is None:
        raise click.UsageError("--keyed needs SIGNOFF_AUDIT_KEY, the key to check them with")
    result = session.engine().verify_audit(heads)
    if result.broken is not None:
        # A key that matches nothing is not evidence of an edit: say which it looks like.
        verdict = "NOT VERIFIED from" if result.broken.key_mismatch else "BROKEN at"
        click.echo(
            f"audit trail {verdict} record {result.broken.seq}: {result.broken.reason} "
            f"({_intact(result.checked)})",
            err=True,
        )
        raise click.exceptions.Exit(1)
    which = "record 1 was" if result.unkeyed == 1 else f"records 1-{result.unkeyed} were"
    if keyed and result.unkeyed:
        click.echo(
            f"audit trail NOT VERIFIED with --keyed: {which} hashed without SIGNOFF_AUDIT_KEY "
            "(written before it was set, or rewritten by someone without it)",
            err=True,
        )
        raise click.exceptions.Exit(1)
    click.echo(f"audit trail intact: {result.checked} records, last hash {result.head}")
    if result.unkeyed:
        click.echo(f"{which} written before SIGNOFF_AUDIT_KEY was set (hashed without it)")
    for seq in sorted(heads):
        click.echo(f"record {seq} still has the hash given with --head")
    if result.checked:
        click.echo(f"keep {result.checked}:{result.head} to check later with --head")


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
    if count == 0:
        # An empty export looks like a failure (or a typo in --flow): say it matched nothing.
        click.echo("no audit records match; nothing exported", err=True)
    elif session.verbose:
        click.echo(f"exported {count} record{'' if count == 1 else 's'}", err=True)


def _intact(checked: int) -> str:
    if checked == 0:
        return "no record before it"
    if checked == 1:
        return "1 record before it is intact"
    return f"{checked} records before it are intact"
