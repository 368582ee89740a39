"""Secondary services (``/services``) and their logs (``terracube.services.store``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

One row per XYZ or WMTS service, owned by its user like a job; ``version`` counts its changes,
so tiles cached for an older version are never served. The logs keep a service's newest entries
(tile failures among them). Nothing existing changes.
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
        "services",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("process", sa.JSON(), nullable=False),
        sa.Column("configuration", sa.JSON(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("log_level", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(255), nullable=True),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "service_logs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(64), sa.ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_services_user_id", "services", ["user_id"])
    op.create_index("ix_service_logs_service_id", "service_logs", ["service_id"])


def downgrade() -> None:
    op.drop_index("ix_service_logs_service_id", table_name="service_logs")
    op.drop_table("service_logs")
    op.drop_index("ix_services_user_id", table_name="services")
    op.drop_table("services")
