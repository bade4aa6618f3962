"""Each process row names the owner timeout its process declared.

Replicas started with different heartbeat and owner-timeout settings took each other's
runs: one with a short owner timeout judged a live replica that beats slowly by its own
timeout, took it for dead, and took its runs over. Each process is now judged by the
timeout it declared. Rows stored before have none, and each observer judges them by its
own timeout, as before.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: the live processes' rows stay valid as they are, and a
    # process of the previous version still running meanwhile registers without it.
    op.add_column("processes", sa.Column("owner_timeout_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    # A batch: SQLite before 3.35 has no DROP COLUMN (nothing names processes by a
    # foreign key, so its copy is harmless).
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("owner_timeout_seconds")
