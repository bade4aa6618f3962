"""The timers' sweeps over waiting pauses, past a pause edited outside Signoff.

A sweep (the overdue pauses to time out, the due escalations) reads every waiting pause it
is due for at once: one of them that could not be read (its approvers not a list, its
deadline not a time, text that is not UTF-8...) failed the whole read, so no pause timed
out or escalated any more, anywhere. Now a sweep whose read fails is made once more with
the JSON columns and times as text (``lenient``): it gets the pauses it can read, and each
it cannot is said once by this store (``pause_unreadable``: run id, pause key, why) and
left as it is, waiting: nothing stored is changed. The usual read stays as it was.
"""

from __future__ import annotations

import logging
from typing import Any

from signoff.engine.errors import RunUnreadable
from signoff.engine.runs import Pause
from signoff.engine.store import rows
from signoff.engine.store.base import StoreBase
from signoff.engine.store.undecodable import TextNotUtf8, leniently

logger = logging.getLogger(__name__)

#: what a sweep's read fails with on a pause edited outside Signoff (``rows.shaped``
#: makes a conversion's failure a ValueError)
UNREADABLE = (ValueError, TextNotUtf8)
#: the pauses said already, per store, so that a sweep every few seconds says each once
_SAID_AT_MOST = 10_000


def readable_pauses(store: StoreBase, as_text: Any, failure: Exception) -> list[Pause]:
    """The pauses of ``as_text`` (a sweep's read, with ``lenient.as_text`` columns) that
    can be read; says once each that cannot, and why (the read failed with ``failure``)."""
    logger.info(
        "a waiting pause cannot be read; reading the sweep again to step past it",
        extra={"action": "read_value_unreadable", "read": "sweep", "error": str(failure)[:300]},
    )
    pauses: list[Pause] = []
    with leniently():  # rows.to_pause decodes what it reads as text, naming what it cannot
        with store._read() as conn:
            found = conn.execute(as_text).all()
        for row in found:
            try:
                pauses.append(rows.to_pause(row))
            except RunUnreadable as exc:
                _say(store, str(exc.run_id), _key(row.key), exc.reason)
    return pauses


def _key(value: object) -> str:
    """A pause's key, as stored (its bytes escaped if they are not UTF-8)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def _say(store: StoreBase, run_id: str, key: str, why: str) -> None:
    said: set[tuple[str, str, str]] = store.__dict__.setdefault("_unreadable_pauses_said", set())
    if (run_id, key, why) in said:
        return
    if len(said) >= _SAID_AT_MOST:
        said.clear()  # said again, rather than kept without end
    said.add((run_id, key, why))
    logger.error(
        "pause %r of run %s cannot be read (%s): it was changed outside Signoff; the timers "
        "leave it waiting and go on with the others",
        key,
        run_id,
        why,
        extra={"action": "pause_unreadable", "run_id": run_id, "key": key, "reason": why},
    )


__all__ = ["UNREADABLE", "readable_pauses"]
