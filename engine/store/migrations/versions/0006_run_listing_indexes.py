"""Indexes that list runs newest first, a page at a time, at any number of runs.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_runs_state_created": ["state", "created_at", "id"],
    "ix_runs_flow_created": ["flow_name", "created_at", "id"],
    "ix_runs_created": ["created_at", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "runs", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="runs")
