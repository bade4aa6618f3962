"""The who-started index gains the run id, so a filtered listing pages by key from it alone.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_started_by_created_id", "runs", ["started_by", "created_at", "id"])
    op.drop_index("ix_runs_started_by_created", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_started_by_created", "runs", ["started_by", "created_at"])
    op.drop_index("ix_runs_started_by_created_id", table_name="runs")
