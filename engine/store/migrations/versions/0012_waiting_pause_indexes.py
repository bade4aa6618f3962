"""Indexes over waiting pauses only, none of which a lookup of one run's pauses can misuse.

The indexes on (status, deadline) and (status, escalate_at) let the planner answer
"status = 'waiting'" from them. PostgreSQL prices that condition by its statistics as of
the last ANALYZE: taken while few pauses waited, they made a run's own lookups (its
waiting pause, the pause an answer stores into) scan every waiting pause through those
indexes rather than the run's few rows: 5 ms at 40,000 waiting, growing with them.

Now each index holds waiting pauses only, and the timers' two say in their condition
what only the timers' sweeps ask (a deadline, an escalation not yet made), so no other
query can use them. The third, by run, serves the lists and the count of waiting pauses,
and at worst leads a run's lookup straight to that run's rows.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: name: (columns, the condition of a partial index)
_Indexes = dict[str, tuple[list[str], str | None]]
_WAITING = "status = 'waiting'"
_NEW: _Indexes = {
    "ix_pauses_waiting_run": (["run_id", "id"], _WAITING),
    "ix_pauses_waiting_deadline": (["deadline"], f"{_WAITING} AND deadline IS NOT NULL"),
    "ix_pauses_waiting_escalate": (
        ["escalate_at"],
        f"{_WAITING} AND escalate_at IS NOT NULL AND escalated_at IS NULL",
    ),
}
_OLD: _Indexes = {
    "ix_pauses_status_deadline": (["status", "deadline"], None),
    "ix_pauses_status_escalate": (["status", "escalate_at"], None),
}


def upgrade() -> None:
    _swap(_NEW, _OLD)


def downgrade() -> None:
    _swap(_OLD, _NEW)


def _swap(made: _Indexes, dropped: _Indexes) -> None:
    """Make the indexes ``made``, then drop those ``dropped``, in the migration's
    transaction. Not CONCURRENTLY: that waits for every transaction with an older
    snapshot, and another process's upgrade waiting for the migration lock holds one;
    the two waited for each other until PostgreSQL ended one as a deadlock."""
    for name, (columns, condition) in made.items():
        where = None if condition is None else sa.text(condition)
        op.create_index(name, "pauses", columns, postgresql_where=where, sqlite_where=where)
    for name in dropped:
        op.drop_index(name, table_name="pauses")
