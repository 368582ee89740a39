"""Hashing what must never be stored as is.

Passwords, chosen by people, get Argon2id (argon2-cffi's defaults, RFC 9106's second
recommendation). Secrets the server makes itself (client secrets, refresh tokens, device and
authorization codes) carry 256 random bits, so no guessing can succeed and a SHA-256 digest is
enough; it is also fast and exact, so the digest can be the database key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
_unknown: list[str] = []
# Each Argon2 run takes 64 MiB and tens of milliseconds on purpose: a flood of login attempts
# waits here instead of taking the server's memory.
_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


def _unknown_hash() -> str:
    """Verified when the user name is unknown, so an answer takes as long either way (made on first need)."""
    if not _unknown:
        _unknown.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _unknown[0]


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing hash (no account) costs the same time and fails."""
    expected = password_hash or _unknown_hash()
    with _slots:
        try:
            return _hasher.verify(expected, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_digest)
