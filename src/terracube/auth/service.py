"""One ``AuthService`` per app: the mode, the stores, the keys, and who a request's token is.

Made on first use (``auth_service(app)``), never in ``create_app``: opening it touches the
database and the key folder, and a server that only lists processes need not.

The modes (docs/auth.md):
- ``LAPTOP``: ``TERRACUBE_AUTH=auto`` and no account in the database. One local user owns
  everything; tokens are not needed, and logins succeed at once.
- ``ACCOUNTS``: an account exists, or ``TERRACUBE_AUTH=required``. Every route but the public
  ones needs a valid token. Once a server has seen an account it stays in this mode until it
  restarts, so removing the last account cannot open a running server to everyone.
- ``OPEN``: ``TERRACUBE_AUTH=none``. Like laptop mode whatever the accounts, on purpose.

In accounts mode a token is the built-in issuer's (``basic//...``, ``oidc/terracube/...``) or one
of the operator's other providers' (``oidc/<id>/...``, checked by ``external.py``); a person of
another provider becomes a terracube user at their first login.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any, TYPE_CHECKING
from urllib.parse import urlsplit

from terracube.auth.errors import AuthenticationRequired, AuthenticationSchemeInvalid, TokenInvalid
from terracube.auth.external import ExternalIdentity, ExternalIssuers
from terracube.auth.grants import GrantStore
from terracube.auth.keys import KeyRing
from terracube.auth.modes import Mode
from terracube.auth.providers import BUILTIN_PROVIDER_ID
from terracube.auth.store import AuthStore, user_of
from terracube.auth.limits import LoginThrottle
from terracube.auth.tokens import LEEWAY, TokenRejected, Tokens
from terracube.auth.user import LOCAL_USER, User

if TYPE_CHECKING:
    from terracube.settings import Settings

log = logging.getLogger("terracube.auth")

PROVIDER_ID = BUILTIN_PROVIDER_ID  # the built-in issuer's id in /credentials/oidc and in "Bearer oidc/terracube/..."
ISSUER_PATH = "/oidc"
MODE_SECONDS = 2.0  # how long "are there accounts?" is answered from memory
USER_SECONDS = 5.0  # how long an account looked up for a token is reused (a removed user is refused after that)


def keys_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "keys"


def key_ring(settings: Settings) -> KeyRing:
    # A retired key verifies as long as a token it signed can live, clock leeway included.
    keep = max(settings.access_token_lifetime, settings.basic_token_lifetime) + 2 * LEEWAY
    return KeyRing(keys_dir(settings), keep_seconds=keep)


class AuthService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: AuthStore | None = None
        self.keys = key_ring(settings)
        self.tokens = Tokens(self.keys)
        self._lock = threading.Lock()
        self._accounts_seen = False
        self._mode_checked = float("-inf")
        self._users: dict[str, tuple[float, User | None, float | None]] = {}
        # The operator's other providers; one validator for the app, so its keys and userinfo caches live.
        self.external = ExternalIssuers(settings.oidc_providers)
        self._external_users: dict[tuple[str, str], tuple[float, User]] = {}

    @property
    def store(self) -> AuthStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = AuthStore.open(self.settings)
        return self._store

    @functools.cached_property
    def grants(self) -> GrantStore:
        return GrantStore(self.store.sessions)  # one for the app: it remembers when it last purged

    @functools.cached_property
    def login_throttle(self) -> LoginThrottle:
        return LoginThrottle(self.store.sessions, self.settings)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # --- mode ------------------------------------------------------------------------------
    def mode(self) -> Mode:
        setting = self.settings.auth
        if setting == "none":
            return Mode.OPEN
        if setting == "required" or self._accounts_seen:
            return Mode.ACCOUNTS
        now = time.monotonic()
        if now - self._mode_checked > MODE_SECONDS:
            self._accounts_seen = self.store.count_users() > 0
            self._mode_checked = now
            if self._accounts_seen:
                log.info("accounts exist: every request but the public ones needs a token from now on")
        return Mode.ACCOUNTS if self._accounts_seen else Mode.LAPTOP

    def no_login_needed(self) -> bool:
        """Laptop or open mode: one local user, every login approved at once."""
        return self.mode() is not Mode.ACCOUNTS

    # --- the issuer's address --------------------------------------------------------------
    def base_url(self, request: Any) -> str:
        """The server's URL: ``TERRACUBE_PUBLIC_URL``, or the one this request came to."""
        public = self.settings.public_url
        return public.rstrip("/") if public else str(request.base_url).rstrip("/")

    def issuer(self, request: Any) -> str:
        return self.base_url(request) + ISSUER_PATH

    # --- users -----------------------------------------------------------------------------
    def _account(self, user_id: str) -> tuple[User | None, float | None]:
        now = time.monotonic()
        cached = self._users.get(user_id)
        if cached is not None and now - cached[0] < USER_SECONDS:
            return cached[1], cached[2]
        account = self.store.account_by_id(user_id)
        user = user_of(account) if account is not None else None
        valid_from = account.tokens_valid_from.timestamp() if account is not None and account.tokens_valid_from else None
        self._users[user_id] = (now, user, valid_from)
        return user, valid_from

    def user_for(self, user_id: str | None, local: bool) -> User | None:
        """The user a stored grant was made for, if it still counts: local grants only while no login is needed."""
        if local:
            return LOCAL_USER if self.no_login_needed() else None
        return self._account(user_id)[0] if user_id else None

    def check_password(self, name: str, password: str, origin: str = "") -> User | None:
        """The user with this name and password (the local user, in laptop mode), or None; failures are logged.

        ``TooManyLoginAttempts`` (429) when ``origin`` failed too often lately: then no hash runs.
        """
        if self.no_login_needed():
            return LOCAL_USER
        self.login_throttle.check(name, origin)
        user = self.store.check_password(name, password)
        if user is None:
            self.login_throttle.failed(name, origin)
            log.warning("failed login for user name %r%s", name[:64], f" from {origin}" if origin else "")
        else:
            self.login_throttle.succeeded(name, origin)
        return user

    # --- the check of every request --------------------------------------------------------
    def identify(self, authorization: str | None, issuer: str) -> User:
        """The user of a request with this ``Authorization`` header, or the openEO error saying why not."""
        if self.no_login_needed():
            return LOCAL_USER  # a token, stale or not, changes nothing here
        if not authorization:
            raise AuthenticationRequired("Log in first: this server has accounts (con.authenticate_oidc() or con.authenticate_basic()).")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationSchemeInvalid(f"Authentication scheme {scheme!r} is not supported here: send 'Authorization: Bearer ...'.")
        provider, token = openeo_bearer_token(credentials.strip())
        if provider != PROVIDER_ID:
            return self.external_user(self.external.identity(provider, token))
        try:
            claims = self.tokens.validate(token, issuer)
        except TokenRejected as error:
            log.debug("token refused: %s", error)
            raise TokenInvalid("The access token has expired or is invalid. Please log in again.") from None
        if claims.get("terracube_local"):
            raise TokenInvalid("This token was issued before the server had accounts. Please log in again.")
        user, valid_from = self._account(str(claims["sub"]))
        if user is None or (valid_from is not None and claims["iat"] < int(valid_from)):
            raise TokenInvalid("The access token is no longer valid (the account was removed or its password changed). Please log in again.")
        return user

    def external_user(self, identity: ExternalIdentity) -> User:
        """The terracube user of a person another provider vouched for: found, or created at its first login.

        ``identity`` passed ``ExternalIssuers`` (signature, claims, the provider's claim gate) on
        this very request; only the account lookup is reused for a few seconds.
        """
        now = time.monotonic()
        cached = self._external_users.get(identity.key)
        if cached is not None and now - cached[0] < USER_SECONDS:
            return cached[1]
        user = self.store.external_user(identity.provider_id, identity.sub, identity.name or identity.email)
        self._external_users[identity.key] = (now, user)
        return user


def openeo_bearer_token(credentials: str) -> tuple[str, str]:
    """(provider id, token) of an openEO bearer value: ``basic//TOKEN`` (the built-in issuer's) or ``oidc/PROVIDER/TOKEN``."""
    method, _, rest = credentials.partition("/")
    if method == "basic" and rest.startswith("/"):
        return PROVIDER_ID, rest[1:]
    if method == "oidc":
        provider, _, token = rest.partition("/")
        return provider, token
    raise TokenInvalid("The bearer token must look like 'basic//TOKEN' or 'oidc/PROVIDER/TOKEN' (openEO API, Authentication).")


_service_lock = threading.Lock()


def auth_service(app: Any) -> AuthService:
    """The app's ``AuthService``, made on first use."""
    service = getattr(app.state, "auth", None)
    if service is None:
        with _service_lock:
            service = getattr(app.state, "auth", None)
            if service is None:
                service = app.state.auth = AuthService(app.state.settings)
    return service


def is_loopback_host(host: str) -> bool:
    """True if ``host`` (an address or a name, as ``--host`` takes it) only listens on this machine."""
    import ipaddress
    import socket

    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)
