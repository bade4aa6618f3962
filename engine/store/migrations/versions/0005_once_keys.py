"""Keys claimed once for a while, shared by every process (replayed requests are refused).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "once_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_once_keys_expires_at", "once_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_once_keys_expires_at", table_name="once_keys")
    op.drop_table("once_keys")
