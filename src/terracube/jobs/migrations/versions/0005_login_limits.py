"""Bounds on what anybody may ask of the login routes (docs/auth.md, "Limits on logins").

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

``device_codes.origin``: the address that asked for a device code, so that live codes can be
capped per address. Codes made before have none and count towards the overall cap only; they
expire within minutes anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device_codes", sa.Column("origin", sa.String(64), nullable=True))
    op.create_index("ix_device_codes_origin", "device_codes", ["origin"])


def downgrade() -> None:
    op.drop_index("ix_device_codes_origin", table_name="device_codes")
    with op.batch_alter_table("device_codes") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("origin")
