"""Task records keep the pause and task calls made inside them.

A re-run that reuses a task's stored result does not run its body, so the pauses and the
tasks it called are not called again; counting them from the record keeps the keys of the
calls after it as they were (an unnamed pause after the task is "2" again, not "1").

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("inner_calls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("inner_calls")
