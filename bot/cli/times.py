"""Times typed on the command line: an ISO 8601 date or time, or an age such as ``2h``.

``runs list --since 2026-11-30`` (midnight UTC), ``--since 2026-11-30T09:00+01:00``, and
``--since 90m`` (ninety minutes ago) all name an instant; a time without an offset is UTC,
the zone every time the CLI prints is in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from signoff.bot.cli.render import format_time

__all__ = ["Seconds", "check_range", "parse_time", "read_time", "time_range_options"]

F = TypeVar("F", bound=Callable[..., Any])

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Seconds(click.FloatRange):
    """A number of seconds from 0 to ``most``: ``nan`` and ``inf`` are refused by name
    (click's range lets ``nan`` through, and a wait for ``nan`` seconds never ends)."""

    name = "seconds"

    def __init__(self, most: float) -> None:
        super().__init__(min=0, max=most)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # Finite first, so that the value is named as typed ('1e400' overflows to inf,
        # which the range check would name instead).
        seconds = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return super().convert(seconds, param, ctx)


def read_time(text: str, *, now: datetime | None = None) -> datetime:
    """The instant ``text`` names, in UTC.

    Example:
        >>> read_time("2026-11-30T09:30+01:00").isoformat()
        '2026-11-30T08:30:00+00:00'

    Raises:
        ValueError: ``text`` is neither an ISO 8601 date or time nor an age.
    """
    text = text.strip()
    age = _AGE.match(text.lower())
    if age:
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[age[2]]: int(age[1])})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give a date (2026-11-30), a UTC time (2026-11-30T09:30), "
            "one with an offset (2026-11-30T09:30+01:00), or an age (45m, 2h, 7d, 2w)"
        ) from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59-01:00 is in the year 10000 in UTC; 0001-01-01T00:00+01:00 in 0.
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def parse_time(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> datetime | None:
    """A click callback for options that take a time; click names the option in errors.

    Raises:
        click.BadParameter: the text is not a time.
    """
    if raw is None:
        return None
    try:
        return read_time(raw)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Refuse a ``--since`` that is not before ``--until``: the range would hold nothing.

    Raises:
        click.UsageError: naming both instants.
    """
    if since is not None and until is not None and since >= until:
        raise click.UsageError(
            f"--since ({format_time(since)} UTC) must be before --until ({format_time(until)} UTC)"
        )


def time_range_options(what: str) -> Callable[[F], F]:
    """``--since`` and ``--until`` for a command, each taking what ``read_time`` reads.

    Example::

        @click.command()
        @time_range_options("runs created")
        def list_runs(since: datetime | None, until: datetime | None) -> None: ...
    """
    since = click.option(
        "--since",
        callback=parse_time,
        metavar="TIME",
        help=f"Only {what} at or after TIME (e.g. 2h, 2026-11-30).",
    )
    until = click.option(
        "--until", callback=parse_time, metavar="TIME", help=f"Only {what} before TIME."
    )

    def decorate(command: F) -> F:
        return since(until(command))

    return decorate
