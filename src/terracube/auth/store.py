"""Accounts and clients in the jobs database: what ``terracube users`` and the login routes use.

The store opens its own engine on the jobs database URL (SQLite file by default, PostgreSQL by
URL) and brings the schema up to date with the same Alembic migrations as the job store, so the
CLI works before any server ever ran.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from terracube.auth import passwords
from terracube.auth.models import Account, AuthorizationCode, Client, DeviceCode, RefreshToken
from terracube.auth.user import LOCAL_USER, User
from terracube.jobs.store import database_url, make_engine, migrate, utcnow

if TYPE_CHECKING:
    from terracube.settings import Settings

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class AccountError(ValueError):
    """A request about accounts that cannot be done (the name is taken, no such user...)."""


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    name: str
    user_id: str
    user_name: str


def user_of(account: Account) -> User:
    return User(account.id, account.name, admin=account.admin)


def check_password_rules(password: str) -> None:
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password needs at least {passwords.MIN_PASSWORD_LENGTH} characters.")


def external_names(display: str, provider: str, subject: str) -> list[str]:
    """The names an external user may get, the first one free is taken: names are unique among all users."""
    display = " ".join(display.split())[:200] or subject[:200]
    digest = hashlib.sha256(subject.encode()).hexdigest()[:10]
    return [display, f"{display} ({provider})", f"{display} ({provider} {digest})", f"{provider}:{digest}:{secrets.token_hex(4)}"]


class AuthStore:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings) -> "AuthStore":
        """The store of this deployment's database, its schema brought up to date."""
        store = cls(database_url(settings))
        migrate(store.engine)
        return store

    def close(self) -> None:
        self.engine.dispose()

    # --- users -----------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(Account)) or 0

    def add_user(self, name: str, password: str, admin: bool = False, owns_local_data: bool = False) -> User:
        """A new account; with ``owns_local_data`` it takes the local user's id, and so what laptop mode stored."""
        if not NAME_PATTERN.match(name):
            raise AccountError(f"{name!r} is not a valid user name: letters, digits and . _ @ + - (at most 64), starting with a letter or digit.")
        check_password_rules(password)
        user_id = LOCAL_USER.user_id if owns_local_data else "u-" + secrets.token_hex(8)
        with self.sessions.begin() as session:
            if session.scalar(select(Account).where(Account.name == name)) is not None:
                raise AccountError(f"A user named {name!r} exists already.")
            if session.get(Account, user_id) is not None:
                raise AccountError(f"The local user's data belongs to another account already ({user_id}).")
            account = Account(id=user_id, name=name, password_hash=passwords.hash_password(password), admin=admin, created=utcnow())
            session.add(account)
        return user_of(account)

    def account(self, name: str) -> Account:
        with self.sessions() as session:
            account = session.scalar(select(Account).where(Account.name == name))
        if account is None:
            raise AccountError(f"There is no user named {name!r} (see terracube users list).")
        return account

    def account_by_id(self, user_id: str) -> Account | None:
        with self.sessions() as session:
            return session.get(Account, user_id)

    def accounts(self) -> list[Account]:
        with self.sessions() as session:
            return list(session.scalars(select(Account).order_by(Account.name)))

    def check_password(self, name: str, password: str) -> User | None:
        """The user whose name and password these are, or None (in the same time either way)."""
        with self.sessions() as session:
            account = session.scalar(select(Account).where(Account.name == name))
        if not passwords.verify_password(account.password_hash if account else None, password):
            return None
        if passwords.needs_rehash(account.password_hash):
            with self.sessions.begin() as session:
                session.execute(update(Account).where(Account.id == account.id).values(password_hash=passwords.hash_password(password)))
        return user_of(account)

    def set_quota(self, name: str, **values: float | int | None) -> Account:
        """Set ``quota_cpu_hours`` and/or ``quota_storage_bytes`` of an account (None: the default; 0: no limit)."""
        allowed = {"quota_cpu_hours", "quota_storage_bytes"}
        if not set(values) <= allowed:
            raise AccountError(f"Unknown quota {sorted(set(values) - allowed)}.")
        if any(value is not None and value < 0 for value in values.values()):
            raise AccountError("A quota cannot be negative (0 means no limit).")
        account = self.account(name)
        with self.sessions.begin() as session:
            session.execute(update(Account).where(Account.id == account.id).values(**values))
        return self.account(name)

    def set_password(self, name: str, password: str) -> None:
        """A new password; every token and refresh token issued before ends now."""
        check_password_rules(password)
        account = self.account(name)
        if account.provider is not None:
            raise AccountError(f"{name!r} logs in through the OpenID Connect provider {account.provider!r}: it has no password here.")
        with self.sessions.begin() as session:
            values = {"password_hash": passwords.hash_password(password), "tokens_valid_from": utcnow()}
            session.execute(update(Account).where(Account.id == account.id).values(**values))
            session.execute(update(RefreshToken).where(RefreshToken.user_id == account.id).values(revoked=True))

    def remove_user(self, name: str) -> str:
        """Remove the account, its clients and pending logins; returns its user id (its data is the caller's)."""
        account = self.account(name)
        with self.sessions.begin() as session:
            session.execute(delete(Client).where(Client.user_id == account.id))
            session.execute(delete(RefreshToken).where(RefreshToken.user_id == account.id))
            session.execute(delete(DeviceCode).where(DeviceCode.user_id == account.id))
            session.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == account.id))
            session.execute(delete(Account).where(Account.id == account.id))
        return account.id

    # --- users of the operator's other OpenID Connect providers (auth/external.py) ----------
    def external_account(self, provider: str, subject: str) -> Account | None:
        with self.sessions() as session:
            return session.scalar(select(Account).where(Account.provider == provider, Account.subject == subject))

    def external_user(self, provider: str, subject: str, display_name: str | None) -> User:
        """The user ``(provider, subject)``, created at its first login with the default quotas (no override)."""
        account = self.external_account(provider, subject)
        if account is not None:
            return user_of(account)
        # "x-" never starts a local account's id ("u-...", "anonymous"); the random part makes an
        # account removed and created again at its next login a new user, not the heir of the old data.
        user_id = f"x-{provider}-{secrets.token_hex(8)}"
        for name in external_names(display_name or subject, provider, subject):
            try:
                with self.sessions.begin() as session:
                    account = Account(id=user_id, name=name, password_hash=None, admin=False, created=utcnow(), provider=provider, subject=subject)
                    session.add(account)
                return user_of(account)
            except IntegrityError:
                # The name is taken, or a parallel request of the same person created the account first.
                account = self.external_account(provider, subject)
                if account is not None:
                    return user_of(account)
        raise AccountError(f"No free user name for {subject!r} of provider {provider!r}.")

    # --- clients ---------------------------------------------------------------------------
    def add_client(self, name: str, user_name: str) -> tuple[str, str]:
        """A confidential client acting for ``user_name``: (client id, secret); only the secret's digest is kept."""
        account = self.account(user_name)
        client_id, secret = "tc-" + secrets.token_hex(8), passwords.new_secret()
        with self.sessions.begin() as session:
            session.add(Client(id=client_id, name=name, secret_hash=passwords.digest(secret), user_id=account.id, created=utcnow()))
        return client_id, secret

    def client(self, client_id: str) -> Client | None:
        with self.sessions() as session:
            return session.get(Client, client_id)

    def clients(self) -> list[ClientInfo]:
        query = select(Client, Account.name).join(Account, Account.id == Client.user_id).order_by(Account.name, Client.name)
        with self.sessions() as session:
            return [ClientInfo(client.id, client.name, client.user_id, user_name) for client, user_name in session.execute(query)]

    def remove_client(self, client_id: str) -> None:
        with self.sessions.begin() as session:
            if session.execute(delete(Client).where(Client.id == client_id)).rowcount != 1:
                raise AccountError(f"There is no client {client_id!r} (see terracube clients list).")
