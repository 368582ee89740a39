"""Bounds on what anybody may ask of the login routes (docs/auth.md, "Limits on logins").

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``device_codes.origin``: the address that asked for a device code, so that live codes can be
capped per address. Codes made before have none and count towards the overall cap only; they
expire within minutes anyway.

``login_failures``: one row per failed password login (a digest of the name, the address, when),
which the limits on password guessing count; rows older than the window are deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device_codes", sa.Column("origin", sa.String(64), nullable=True))
    op.create_index("ix_device_codes_origin", "device_codes", ["origin"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_origin_at", "login_failures", ["origin", "at"])
    op.create_index("ix_login_failures_name_origin", "login_failures", ["name_hash", "origin"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_name_origin", table_name="login_failures")
    op.drop_index("ix_login_failures_origin_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_device_codes_origin", table_name="device_codes")
    with op.batch_alter_table("device_codes") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("origin")
