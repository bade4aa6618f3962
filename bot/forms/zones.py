"""The UTC offsets of the dates and times a form starts from (ISO text, as in a schema).

Slack's pickers know no zones: a time picker sends a clock time, a datetime picker seconds
since 1970. ``bot.forms.layout`` and ``bot.forms.submissions`` read the zone of the value
a field started from here, so that its answer comes back in that zone, or in none.
"""

from __future__ import annotations

from datetime import datetime, time, tzinfo
from typing import Any

__all__ = ["datetime_zone", "time_offset", "zoneless"]


def datetime_zone(value: Any) -> tzinfo | None:
    """The fixed offset of a date and time written in ISO form, other than UTC's; else None."""
    if not isinstance(value, str):
        return None
    try:
        zone = datetime.fromisoformat(value).tzinfo
    except ValueError:
        return None
    return zone if zone is not None and zone.utcoffset(None) else None


def zoneless(value: Any) -> bool:
    """Whether ``value`` is a date and time written in ISO form without a UTC offset."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is None
    except ValueError:
        return False


def time_offset(value: Any) -> str | None:
    """The UTC offset of a time of day written in ISO form (``09:00:00+02:00`` gives
    ``+02:00``, ``12:00:00Z`` gives ``Z``); None for a time without one, or no time."""
    if not isinstance(value, str):
        return None
    try:
        offset = time.fromisoformat(value).utcoffset()
    except ValueError:
        return None
    if offset is None:
        return None
    if not offset:
        return "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
