"""How much of a run's id a command that acts on the run needs.

A unique prefix names a run, as git's abbreviated hashes name commits; but with few runs
stored, ``cancel 1`` matched the only run whose id starts with ``1``, and a typo acted on
a run. Acting (answering, handing over, cancelling) takes at least ``MIN_ACTING_PREFIX``
characters, as git's shortest abbreviation; the short ids that ``runs list`` and Slack
show (8) are more than that. Reading a run (show, wait, a listing's ``before=``) takes any
unique prefix: reading the wrong run changes nothing.
"""

from __future__ import annotations

#: the fewest characters of a run's id that name the run to act on
MIN_ACTING_PREFIX = 4


def too_short_to_act(run_id: str) -> str | None:
    """Why ``run_id`` is too short to name a run to act on, or None when it is long enough.

    The reason names what was typed and the minimum; it is plain text (the caller quotes
    or escapes it for where it is shown).
    """
    if len(run_id.strip()) >= MIN_ACTING_PREFIX:
        return None
    return (
        f"{run_id!r} is too short to act on a run: give at least {MIN_ACTING_PREFIX} "
        "characters of its id (as runs are listed), so that a typo names no other run"
    )


__all__ = ["MIN_ACTING_PREFIX", "too_short_to_act"]
