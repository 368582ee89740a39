"""Accounts, clients and logins (``terracube.auth.models``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Nothing existing changes: what a server stored before accounts keeps its user id ``anonymous``,
the local user of laptop mode (docs/auth.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        _when("created"),
        _when("tokens_valid_from", nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("quota_cpu_hours", sa.Float(), nullable=True),
        sa.Column("quota_storage_bytes", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("provider", "subject", name="uq_users_provider_subject"),
    )
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        _when("created"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family", sa.String(64), nullable=False, index=True),
        sa.Column("parent", sa.String(64), nullable=True, index=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("local", sa.Boolean(), nullable=False, server_default=sa.false()),
        _when("issued"),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False, index=True),
        _when("used", nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "device_codes",
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code", sa.String(16), nullable=False, unique=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("interval", sa.Integer(), nullable=False),
        _when("last_poll", nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("local", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("local", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("authorization_codes", "device_codes", "refresh_tokens", "oauth_clients", "users"):
        op.drop_table(table)
