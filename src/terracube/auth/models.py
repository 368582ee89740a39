"""The tables of accounts and logins (migrations ``0003_accounts``, ``0006_login_limits``) and of usage (``0004_usage``), in the jobs database.

Secrets are never stored: passwords as Argon2 hashes, client secrets, refresh tokens, device
codes and authorization codes as SHA-256 digests (they are long random strings, so a fast hash
is enough; ``passwords.py``). The user id is not the login name: names may change, ids stay, and
every stored thing of a user (jobs, files, processes) is keyed by the id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from terracube.jobs.store import UTCDateTime


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "users"
    # External issuers (later) identify a person by (provider, subject); local accounts have neither.
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_users_provider_subject"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    # Tokens issued before this instant are refused (set by a password change).
    tokens_valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(255))
    # Overrides of the default quotas (None: the default applies; 0: no limit). auth/quotas.py.
    quota_cpu_hours: Mapped[float | None] = mapped_column(Float)
    quota_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)


class Client(Base):
    """A confidential client (``terracube clients add``): scripts and CI log in as its owner."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())


class RefreshToken(Base):
    """One refresh token; each use gives a new one of the same family (rotation), see ``grants.py``."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Every token descending from one login: a used token shown again revokes all of them.
    family: Mapped[str] = mapped_column(String(64), index=True)
    # The token this one was exchanged for (None for the first of a family).
    parent: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str | None] = mapped_column(Text)
    # Issued to the local user in laptop mode: never accepted in accounts mode.
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    issued: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DeviceCode(Base):
    """A pending device authorization (RFC 8628), approved or denied on the issuer's page."""

    __tablename__ = "device_codes"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    interval: Mapped[int] = mapped_column(Integer)
    last_poll: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, approved, denied
    user_id: Mapped[str | None] = mapped_column(String(64))
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    # The address that asked for it (migration 0006): live codes are capped per address.
    origin: Mapped[str | None] = mapped_column(String(64), index=True)


class AuthorizationCode(Base):
    """An authorization code (RFC 6749 4.1), used once within a minute."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_time: Mapped[int] = mapped_column(Integer)
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginFailure(Base):
    """A failed password login (migration 0006): the limits on guessing count these (``limits.py``)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_origin_at", "origin", "at"), Index("ix_login_failures_name_origin", "name_hash", "origin"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the name as typed: it may be a mistyped password
    origin: Mapped[str] = mapped_column(String(64))  # the client's address
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageRecord(Base):
    """What one synchronous request or one run of a batch job used (``terracube.usage``), for quotas.

    Kept apart from the job's own ``usage`` field, which a restart of the job clears: the month's
    CPU time is the sum of these rows, whatever became of the jobs.
    """

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # "sync" (POST /result) or "job"
    job_id: Mapped[str | None] = mapped_column(String(64))
    cpu_seconds: Mapped[float] = mapped_column(Float)
    peak_memory: Mapped[int] = mapped_column(BigInteger)  # bytes
    wall_seconds: Mapped[float] = mapped_column(Float)
    pixels: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # when the work ended
