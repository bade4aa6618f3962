"""A durable consumer made with a backlog first hears of the questions already waiting.

The Slack app's consumer used to start at the newest event, so runs that waited for input
before the app first served the database never got a thread. A consumer made now notes
the events up to then (``backlog_until``) and how far it has caught up on them
(``backlog_after``): the question of each pause waiting then is delivered before the
events that follow. Both are NULL once caught up, and for a consumer made before.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = ("backlog_after", "backlog_until")


def upgrade() -> None:
    # Nullable, without a default: a cursor made before has no backlog, and a process of
    # the previous version still running meanwhile leases it as before.
    for name in _COLUMNS:
        op.add_column("event_cursors", sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # A batch: SQLite before 3.35 has no DROP COLUMN.
    with op.batch_alter_table("event_cursors") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
