"""Accounts, passwords, clients, tokens and the built-in OpenID Connect issuer (docs/auth.md).

- ``user.py``      the ``User`` a route receives, and the local user of laptop mode
- ``models.py``    the tables (migration ``jobs/migrations/versions/0003_accounts.py``)
- ``passwords.py`` Argon2 for passwords, SHA-256 digests for the server's own secrets
- ``store.py``     accounts and clients; ``grants.py`` refresh tokens, device and authorization codes
- ``keys.py``      the signing keys in ``<data_dir>/keys``; ``tokens.py`` access tokens and their check
- ``service.py``   the mode (laptop, accounts, open) and who a request is; ``access.py`` the app-wide check
- ``issuer.py``    authlib's authorization server with our glue; ``oidc.py`` its routes; ``pages.py`` its HTML
- ``cli.py``       ``terracube users``, ``clients``, ``keys``; ``userdata.py`` a removed user's data
- ``providers.py`` the operator's other issuers (settings); ``external.py`` their tokens' check
- ``quotas.py``    the usage table, the monthly CPU and storage quotas, what ``GET /me`` shows
"""

from __future__ import annotations

import logging
from typing import Any, TYPE_CHECKING

from terracube.auth.modes import Mode
from terracube.auth.user import LOCAL_USER, User

if TYPE_CHECKING:  # the settings import this room (its providers): no import at run time
    from terracube.settings import Settings

log = logging.getLogger("terracube.auth")

__all__ = ["LOCAL_USER", "Mode", "User", "announce_mode", "auth_mode", "is_laptop_mode"]

OPEN_WARNING = (
    "TERRACUBE_AUTH=none: this server is OPEN. Every request, from anywhere it can be reached, acts as the "
    "one local user, with access to everything stored here. Add accounts (terracube users add) and unset "
    "TERRACUBE_AUTH to close it."
)


def auth_mode(app: Any) -> Mode:
    """The mode ``app`` is in now: ``Mode.LAPTOP``, ``Mode.ACCOUNTS`` or ``Mode.OPEN`` (``TERRACUBE_AUTH=none``).

    Answered from memory; at most every two seconds it asks the database whether accounts exist.
    """
    from terracube.auth.service import auth_service  # the stores and keys load on first need

    return auth_service(app).mode()


def is_laptop_mode(app: Any) -> bool:
    """True while ``app`` is in laptop mode: no accounts, ``TERRACUBE_AUTH=auto``, one local user, logins approved at once.

    ``TERRACUBE_AUTH=none`` (open on purpose, possibly on a public address) is not laptop mode: see ``auth_mode``.
    """
    return auth_mode(app) is Mode.LAPTOP


def announce_mode(settings: Settings) -> None:
    """Say it at every start when the server is open on purpose."""
    if settings.auth == "none":
        log.warning(OPEN_WARNING)
