"""What the built-in issuer keeps between two requests: refresh tokens, device codes, authorization codes.

All of it lives in the database, not in memory, so any of several API servers can answer the next
request of a login (a device flow's poll, a refresh). Every one-time secret is taken with a
conditional update or delete, so two requests racing for it cannot both win.

Refresh tokens rotate: each use issues a new one of the same family (one login). A token that was
used stays usable only until a token issued from it has been used in turn; shown again after
that, it was copied, and the whole family is revoked (OAuth 2.0 Security Best Current Practice,
RFC 9700 4.14.2): whoever holds any of its tokens must log in again. The grace before that is
what the official openEO Python client needs: it stores the new refresh token for the next
session but keeps renewing the running session's access token with the token it started with.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import sessionmaker

from terracube.auth.models import AuthorizationCode, DeviceCode, RefreshToken
from terracube.auth.passwords import digest, new_secret
from terracube.auth.user import User
from terracube.jobs.store import utcnow

log = logging.getLogger("terracube.auth")

AUTHORIZATION_CODE_SECONDS = 60
SLOW_DOWN_STEP = 5  # RFC 8628 3.5: after a slow_down, the interval grows by 5 seconds
# Anybody may ask for device codes (the route is public): what expired is deleted at most this often.
PURGE_SECONDS = 60.0


def normalize_user_code(user_code: str) -> str:
    """``bcdf hjkl``, ``BCDFHJKL`` and ``BCDF-HJKL`` are the same code: people type them."""
    letters = "".join(c for c in user_code.upper() if c.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


class GrantStore:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._purged = float("-inf")

    # --- refresh tokens --------------------------------------------------------------------
    def issue_refresh_token(
        self, user: User, client_id: str, scope: str | None, lifetime: int, parent: RefreshToken | None = None
    ) -> str:
        """A new refresh token: of a new family, or (``parent`` given) of the family of the token it replaces."""
        token, now = new_secret(), utcnow()
        row = RefreshToken(
            token_hash=digest(token), family=parent.family if parent is not None else secrets.token_hex(16),
            parent=parent.token_hash if parent is not None else None, user_id=user.user_id, client_id=client_id,
            scope=scope, local=user.local, issued=now, expires=now + timedelta(seconds=lifetime), revoked=False,
        )
        with self.sessions.begin() as session:
            session.add(row)
        return token

    def use_refresh_token(self, token: str) -> RefreshToken | None:
        """The token's record if it may be exchanged now (it is marked used), else None; a copied token revokes its family."""
        token_hash, now = digest(token), utcnow()
        with self.sessions.begin() as session:
            row = session.get(RefreshToken, token_hash)
            if row is None or row.revoked or row.expires <= now:
                return None
            first_use = session.execute(
                update(RefreshToken).where(RefreshToken.token_hash == token_hash, RefreshToken.used.is_(None)).values(used=now)
            ).rowcount == 1
            if first_use:
                return row
            successor_used = session.scalar(
                select(RefreshToken.token_hash).where(RefreshToken.parent == token_hash, RefreshToken.used.is_not(None)).limit(1)
            )
            if successor_used is None:
                return row  # used before, but what it gave was never used: the same holder asking again
            session.execute(update(RefreshToken).where(RefreshToken.family == row.family).values(revoked=True))
        log.warning("a replaced refresh token of user %s (client %s) was shown again: its whole family is revoked", row.user_id, row.client_id)
        return None

    # --- device codes (RFC 8628) -----------------------------------------------------------
    def live_device_codes(self, origin: str | None = None) -> tuple[int, float]:
        """How many unexpired device codes there are (of ``origin``, or in all), and the seconds until the first of them expires."""
        now = utcnow()
        query = select(func.count(), func.min(DeviceCode.expires)).where(DeviceCode.expires > now)
        if origin is not None:
            query = query.where(DeviceCode.origin == origin)
        with self.sessions() as session:
            count, first = session.execute(query).one()
        return count or 0, (first - now).total_seconds() if first is not None else 0.0

    def add_device_code(
        self, device_code: str, user_code: str, client_id: str, scope: str | None, lifetime: int, interval: int,
        code_challenge: str | None = None, code_challenge_method: str | None = None, approved_for: User | None = None,
        origin: str | None = None,
    ) -> None:
        self.purge_now_and_then()
        row = DeviceCode(
            device_code_hash=digest(device_code), user_code=user_code, client_id=client_id, scope=scope,
            code_challenge=code_challenge, code_challenge_method=code_challenge_method,
            expires=utcnow() + timedelta(seconds=lifetime), interval=interval,
            status="approved" if approved_for else "pending",
            user_id=approved_for.user_id if approved_for else None, local=bool(approved_for and approved_for.local),
            origin=origin[:64] if origin else None,
        )
        with self.sessions.begin() as session:
            session.add(row)

    def device_code(self, device_code: str) -> DeviceCode | None:
        with self.sessions() as session:
            return session.get(DeviceCode, digest(device_code))

    def pending_user_code(self, user_code: str) -> DeviceCode | None:
        """The device authorization waiting for this user code, if it is still pending and in time."""
        with self.sessions() as session:
            row = session.scalar(select(DeviceCode).where(DeviceCode.user_code == normalize_user_code(user_code)))
        return row if row is not None and row.status == "pending" and row.expires > utcnow() else None

    def decide(self, user_code: str, user: User | None) -> bool:
        """Approve a pending device authorization for ``user`` (deny it with None); False if it is not pending any more."""
        query = update(DeviceCode).where(
            DeviceCode.user_code == normalize_user_code(user_code), DeviceCode.status == "pending", DeviceCode.expires > utcnow()
        )
        if user is None:
            values = {"status": "denied"}
        else:
            values = {"status": "approved", "user_id": user.user_id, "local": user.local}
        with self.sessions.begin() as session:
            return session.execute(query.values(**values)).rowcount == 1

    def polled_too_soon(self, row: DeviceCode) -> bool:
        """Record a poll; True (and a longer interval from now on) if it came before the interval was over."""
        now = utcnow()
        too_soon = row.last_poll is not None and (now - row.last_poll).total_seconds() < row.interval
        values = {"last_poll": now}
        if too_soon:
            values["interval"] = row.interval + SLOW_DOWN_STEP
        with self.sessions.begin() as session:
            session.execute(update(DeviceCode).where(DeviceCode.device_code_hash == row.device_code_hash).values(**values))
        return too_soon

    def take_device_code(self, row: DeviceCode) -> bool:
        """Use up an approved device code; False if another poll took it first."""
        query = delete(DeviceCode).where(DeviceCode.device_code_hash == row.device_code_hash, DeviceCode.status == "approved")
        with self.sessions.begin() as session:
            return session.execute(query).rowcount == 1

    # --- authorization codes ---------------------------------------------------------------
    def add_authorization_code(
        self, code: str, client_id: str, redirect_uri: str | None, scope: str | None, user: User,
        nonce: str | None = None, code_challenge: str | None = None, code_challenge_method: str | None = None, auth_time: int = 0,
    ) -> None:
        row = AuthorizationCode(
            code_hash=digest(code), client_id=client_id, redirect_uri=redirect_uri, scope=scope, nonce=nonce,
            code_challenge=code_challenge, code_challenge_method=code_challenge_method, user_id=user.user_id,
            local=user.local, auth_time=auth_time, expires=utcnow() + timedelta(seconds=AUTHORIZATION_CODE_SECONDS),
        )
        with self.sessions.begin() as session:
            session.add(row)

    def take_authorization_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code's record, deleted as it is read: a code works once, even when two requests race."""
        code_hash = digest(code)
        with self.sessions.begin() as session:
            row = session.get(AuthorizationCode, code_hash)
            if row is None:
                return None
            if session.execute(delete(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)).rowcount != 1:
                return None
        return row if row.client_id == client_id and row.expires > utcnow() else None

    # --- housekeeping ----------------------------------------------------------------------
    def purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged > PURGE_SECONDS:
            self.purge()
            self._purged = time.monotonic()

    def purge(self, now: datetime | None = None) -> None:
        """Forget what expired: old device and authorization codes, refresh tokens past their lifetime."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            session.execute(delete(DeviceCode).where(DeviceCode.expires < now))
            session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires < now))
            # Used and revoked tokens stay until they expire: a reuse must still be recognised.
            session.execute(delete(RefreshToken).where(RefreshToken.expires < now))
