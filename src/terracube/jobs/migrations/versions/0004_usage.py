"""The usage of synchronous requests and batch jobs (``terracube.auth.models.UsageRecord``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

One row per synchronous request and per run of a batch job: what the monthly CPU quota sums
(docs/auth.md, "Usage and quotas"). Nothing existing changes.
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
        "usage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("peak_memory", sa.BigInteger(), nullable=False),
        sa.Column("wall_seconds", sa.Float(), nullable=False),
        sa.Column("pixels", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_index("ix_usage_user_at", "usage", ["user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_usage_user_at", table_name="usage")
    op.drop_table("usage")
