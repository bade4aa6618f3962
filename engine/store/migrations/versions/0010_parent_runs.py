"""A nested flow's run names the run of the flow that called it.

Cancelling a run then cancels the runs of the flows it called that have not finished (a
child's pause was left open, and could still be answered, after its parent was cancelled).
Runs stored before have no parent recorded.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite: a batch copy of runs would have to drop the table
    # that every other table's foreign keys name.
    op.add_column("runs", sa.Column("parent_run_id", sa.String(length=32), nullable=True))
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent_run_id", table_name="runs")
    op.drop_column("runs", "parent_run_id")
