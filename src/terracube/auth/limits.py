"""Bounds on what anybody may ask of the login routes (docs/auth.md, "Limits on logins").

Both are counted in the database (migration 0006), so they hold across several API servers
sharing it; two requests at the same instant may both pass a count, so a limit can be overshot
by the requests in flight.

**Live device codes.** ``/oidc/device_authorization`` is public and every code is a row until it
is used or expires: ``device_codes_per_address`` per client address and ``device_codes_max`` in
all. Not per OAuth client: nearly every login uses the one public client.

**Failed password logins.** Every password check costs an Argon2 hash (tens of milliseconds and
64 MiB, on purpose), so unlimited guessing is both an attack on the passwords and on the
server's CPU. The limits:

- per user name and client address: ``login_failures_per_name`` failures within
  ``login_failure_window`` seconds (5 a minute). Counted per pair, not per name alone, so that
  nobody can lock a user out by failing logins under the user's name from elsewhere;
- per client address: ``login_failures_per_address`` failures within the window, whatever the
  names (20 a minute), against one address trying many names.

An attempt beyond a limit is refused before the password is looked at (no hash runs), and is
not counted: the limits open again as the old failures leave the window, so a client that waits
``Retry-After`` seconds gets its next try. A successful login clears its pair's failures. The name
is stored as a SHA-256 digest: what people type into the name field is sometimes a password.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749 import OAuth2Error
from sqlalchemy import delete, func, select
from sqlalchemy.orm import sessionmaker

from terracube.auth.models import LoginFailure
from terracube.auth.passwords import digest
from terracube.errors import OpenEOError
from terracube.jobs.store import utcnow

if TYPE_CHECKING:
    from terracube.auth.grants import GrantStore
    from terracube.settings import Settings


# --- live device codes -----------------------------------------------------------------------
class TooManyDeviceCodes(OAuth2Error):
    """The cap on live device codes is reached: RFC 6749's ``temporarily_unavailable``, with ``Retry-After``.

    RFC 8628 (3.2) has the device authorization endpoint answer errors as the token endpoint does
    (RFC 6749 5.2: a JSON ``error``), and names no error for "too many requests"; its ``slow_down``
    is about polling the token endpoint, which a client would read as a reason to poll more slowly,
    not to come back later. ``temporarily_unavailable`` (RFC 6749 4.1.2.1, in the OAuth extensions
    error registry) says "unable to handle the request due to a temporary overloading", which is
    this. The status says whose doing it is: 429 Too Many Requests (RFC 6585) when this address has
    its share of live codes, 503 when the server as a whole has; ``Retry-After`` is when the
    first of those codes expires, and with it a place becomes free.
    """

    error = "temporarily_unavailable"

    def __init__(self, description: str, status_code: int, retry_after: float):
        super().__init__(description=description, status_code=status_code)
        self.retry_after = max(1, math.ceil(retry_after))

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


def check_device_code_room(grants: GrantStore, settings: Settings, origin: str) -> None:
    """Refuse a new device code while ``origin``, or everyone together, has as many live ones as allowed."""
    grants.purge_now_and_then()
    mine, first = grants.live_device_codes(origin)
    if mine >= settings.device_codes_per_address:
        raise TooManyDeviceCodes(
            f"Too many pending logins from this address ({mine}); finish or let one expire, then try again.", 429, first)
    total, first = grants.live_device_codes()
    if total >= settings.device_codes_max:
        raise TooManyDeviceCodes("Too many pending logins on this server; try again later.", 503, first)


# --- failed password logins ------------------------------------------------------------------


class TooManyLoginAttempts(OpenEOError):
    """429 with ``Retry-After``. errors.json has no code for 429; CredentialsInvalid (403) would say
    the password was wrong, while it was not even checked. So the status's own name, as the
    framework errors without an openEO code are named (api/errors.py)."""

    code, status = "TooManyRequests", 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class LoginThrottle:
    def __init__(self, sessions: sessionmaker, settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self._purged = float("-inf")

    def check(self, name: str, origin: str) -> None:
        """Raise TooManyLoginAttempts if ``origin`` may not try a password now (for ``name`` or at all)."""
        window = timedelta(seconds=self.settings.login_failure_window)
        now = utcnow()
        since = now - window
        with self.sessions() as session:
            for limit, where, whose in (
                (self.settings.login_failures_per_name, (LoginFailure.name_hash == digest(name), LoginFailure.origin == origin[:64]),
                 "for this user name from this address"),
                (self.settings.login_failures_per_address, (LoginFailure.origin == origin[:64],), "from this address"),
            ):
                count = session.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.at > since, *where)) or 0
                if count >= limit:
                    # Free again when enough old failures have left the window: the (count - limit + 1)-th oldest.
                    freed = session.scalar(select(LoginFailure.at).where(LoginFailure.at > since, *where)
                                           .order_by(LoginFailure.at).offset(count - limit).limit(1))
                    wait = (freed + window - now).total_seconds() if freed is not None else window.total_seconds()
                    raise TooManyLoginAttempts(
                        f"Too many failed logins {whose}: {count} in {self.settings.login_failure_window} s. "
                        f"Try again in {max(1, math.ceil(wait))} s.", wait)

    def failed(self, name: str, origin: str) -> None:
        if time.monotonic() - self._purged > self.settings.login_failure_window:
            self._purged = time.monotonic()
            with self.sessions.begin() as session:
                cutoff = utcnow() - timedelta(seconds=self.settings.login_failure_window)
                session.execute(delete(LoginFailure).where(LoginFailure.at <= cutoff))
        with self.sessions.begin() as session:
            session.add(LoginFailure(name_hash=digest(name), origin=origin[:64], at=utcnow()))

    def succeeded(self, name: str, origin: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.name_hash == digest(name), LoginFailure.origin == origin[:64]))
