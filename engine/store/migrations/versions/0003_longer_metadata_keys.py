"""Longer run metadata keys, so that a key can name a pause (pause keys run to 200).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: PostgreSQL alters the column in place, SQLite copies the table.
    with op.batch_alter_table("run_metadata") as batch:
        batch.alter_column("key", type_=sa.String(300), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("run_metadata") as batch:
        batch.alter_column("key", type_=sa.String(200), existing_nullable=False)
