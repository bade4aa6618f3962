"""Who a page of runs involves (``Involvement``): their pauses' approvers and who acted on
them, in two reads for the whole page, so that a listing checks the view rule on every run
it shows without a query per run."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Text, cast, select

from signoff.engine.audit import AuditAction
from signoff.engine.runs import Involvement
from signoff.engine.store.audit_rows import AUDIT
from signoff.engine.store.base import StoreBase
from signoff.engine.store.dropped import read_again_if_dropped
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.undecodable import read_again_if_undecodable

#: what makes someone one who acted on a run (a refusal does not: it is an attempt)
ACTING = tuple(
    a.value
    for a in (
        AuditAction.RUN_STARTED,
        AuditAction.ANSWER_RECEIVED,
        AuditAction.ANSWER_INVALID,
        AuditAction.REASSIGNED,
        AuditAction.RUN_CANCELLED,
    )
)
#: a name nobody has: stands for approvers stored in a shape that cannot be read, so that
#: such a run is shown to fewer people, never to more
UNREADABLE = "(approvers that cannot be read)"


def _names(text: Any) -> tuple[str, ...]:
    """The ids in a pause's ``approvers``, read as their stored text: a value changed
    outside Signoff (not JSON, not UTF-8, not a list of ids) limits the run, never fails
    the page it is listed on."""
    if text is None:
        return ()
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if value is None and text != "null":
        return (UNREADABLE,)
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        return (UNREADABLE,)
    return tuple(value or ())


class InvolvementQueries(StoreBase):
    @read_again_if_dropped
    @read_again_if_undecodable
    def involvement(self, run_ids: Collection[str]) -> dict[str, Involvement]:
        """Each run's ``Involvement``, by run id (a run with no pauses nor records has an
        empty one). Both reads are served by indexes that lead with the run id."""
        wanted = sorted(set(run_ids))
        if not wanted:
            return {}
        approvers: dict[str, list[str]] = {r: [] for r in wanted}
        acted: dict[str, set[str]] = {r: set() for r in wanted}
        with self._read() as conn:
            for run_id, names in conn.execute(
                select(PAUSES.c.run_id, cast(PAUSES.c.approvers, Text)).where(
                    PAUSES.c.run_id.in_(wanted)
                )
            ):
                approvers[run_id] += [n for n in _names(names) if n not in approvers[run_id]]
            for run_id, actor_id in conn.execute(
                select(AUDIT.c.run_id, AUDIT.c.actor_id)
                .where(
                    AUDIT.c.run_id.in_(wanted),
                    AUDIT.c.action.in_(ACTING),
                    AUDIT.c.actor_id.is_not(None),
                )
                .distinct()
            ):
                acted[run_id].add(str(actor_id))
        return {r: Involvement(tuple(approvers[r]), frozenset(acted[r])) for r in wanted}


__all__ = ["InvolvementQueries"]
