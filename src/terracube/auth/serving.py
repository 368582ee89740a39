"""Whether ``terracube serve`` may start on an address, before it listens.

Laptop mode trusts whoever reaches the server, which is safe on a loopback address only. On any
other address (``--host 0.0.0.0``, a LAN address) a server without accounts would give everyone
on the network the local user's rights, so it refuses, unless the operator asked for exactly
that with ``TERRACUBE_AUTH=none``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from terracube.auth.service import is_loopback_host

if TYPE_CHECKING:
    from terracube.settings import Settings


def serve_refusal(settings: Settings, host: str) -> str | None:
    """Why the server must not start on ``host``, or None."""
    if settings.auth != "auto" or is_loopback_host(host):
        return None
    from terracube.auth.store import AuthStore

    store = AuthStore.open(settings)
    try:
        if store.count_users() > 0:
            return None
    finally:
        store.close()
    return (
        f"terracube will not serve on {host} without accounts: anybody who can reach this address would act as the "
        "local user, with access to everything stored here.\n"
        "  - create an account first:   terracube users add NAME --admin\n"
        "  - or keep it on this machine: terracube serve --host 127.0.0.1\n"
        "  - or run it open on purpose:  TERRACUBE_AUTH=none terracube serve --host ...  (not recommended)"
    )
