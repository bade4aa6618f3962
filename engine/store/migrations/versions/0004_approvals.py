"""Approvals: the audit trail, run policies, quorum, escalation, delegation and notify options.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("flow_name", sa.String(length=200), nullable=True),
        sa.Column("actor_id", sa.String(length=200), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("via", sa.String(length=10), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_records") as batch:
        batch.create_index("ix_audit_records_at", ["at"], unique=False)
        batch.create_index("ix_audit_records_flow_name", ["flow_name"], unique=False)
        batch.create_index("ix_audit_records_run_seq", ["run_id", "seq"], unique=False)
        batch.create_index("ix_audit_records_actor_seq", ["actor_id", "seq"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("policy", sa.JSON(), nullable=True))
        batch.create_index("ix_runs_started_by_created", ["started_by", "created_at"])
    with op.batch_alter_table("pauses") as batch:
        batch.add_column(sa.Column("quorum", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("veto", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("answers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("escalate_to", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("notify", sa.String(length=20), nullable=False, server_default="channel")
        )
        batch.add_column(
            sa.Column("confirm", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("delegations", sa.JSON(), nullable=True))
        batch.create_index("ix_pauses_status_escalate", ["status", "escalate_at"])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch copy of ``runs`` would drop a table
    # that other tables' foreign keys point at.
    op.drop_index("ix_pauses_status_escalate", table_name="pauses")
    for column in (
        "delegations",
        "confirm",
        "notify",
        "escalated_at",
        "escalate_to",
        "escalate_at",
        "answers",
        "veto",
        "quorum",
    ):
        op.execute(f"ALTER TABLE pauses DROP COLUMN {column}")
    op.drop_index("ix_runs_started_by_created", table_name="runs")
    op.execute("ALTER TABLE runs DROP COLUMN policy")
    op.drop_table("audit_records")
