"""Where the server may fetch from when a user names the URL (load_url, load_stac, load_ml_model).

A URL in a process graph is the user's, and the server fetches it from inside its own network:
without a rule, a graph could read the cloud's metadata service (169.254.169.254), the
operator's database port on 127.0.0.1 or any machine of the private network, or tell open ports
from closed ones by the wording of the errors. So before any connection the host name is
resolved and every address it resolves to is checked: loopback, private, link-local, shared,
reserved, unspecified and multicast addresses (IPv4-mapped IPv6 ones too) are refused with one
message, the same whatever listens there. Redirects are checked the same way, each one before it
is followed (``GuardedAdapter`` sits under every request of a guarded ``requests`` session).

What the operator allows passes: host names, addresses and networks in ``allowed_fetch_hosts``.
The archives of the collections file are the operator's and are never checked; nor are this
server's own signed result links on loopback or at ``public_url`` (a job's results feed the next
graph through them: ``load_stac_from_job``).

Limits, on purpose: the address is checked, then the connection resolves the name again, so a
name whose DNS answer changes between the two (DNS rebinding) can slip through; GDAL follows
redirects of an asset read by itself, so only each asset's own URL is checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from requests.adapters import HTTPAdapter

from terracube.errors import ProcessParameterInvalid

REFUSED = (
    "The server does not fetch from this URL: its host is a loopback, private, link-local or reserved address. "
    "Use a public URL, or ask the server's operator to allow the host (allowed_fetch_hosts)."
)
MAX_REDIRECTS = 5

_RESULT_LINK = re.compile(r"/jobs/(?P<job>[^/]+)/results/(?:assets/)?(?P<name>[^/]+)$")


class FetchRefused(ProcessParameterInvalid):
    """A user's URL that points inside the server's network (400, one message for every case)."""

    def __init__(self, message: str = REFUSED, **kw):
        super().__init__(message, **kw)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def internal(address: IPAddress) -> bool:
    """Whether an address is one the server must not be sent to by a user's URL."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast or address.is_unspecified


class FetchGuard:
    """The check for one server: its allow-list and its own result links."""

    def __init__(self, allowed: Iterable[str] = (), settings=None):
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed:
            entry = str(entry).strip().strip("[]").lower()
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.rstrip("."))
        self.settings = settings
        self._checked: set[tuple[str, int]] = set()  # hosts already found allowed: a search's many assets share a few

    @classmethod
    def from_settings(cls, settings) -> "FetchGuard":
        return cls(getattr(settings, "allowed_fetch_hosts", None) or (), settings)

    def allows_address(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return not internal(address) or any(address in network for network in self.networks)

    def check(self, url: str) -> None:
        """Refuse ``url`` (``FetchRefused``) unless every address of its host may be fetched from.

        Only http(s) URLs are checked here; other schemes are the callers' to refuse. A name that
        does not resolve passes: the request then fails as "could not be reached", telling nothing.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            return
        try:
            host = (parts.hostname or "").lower().rstrip(".")
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:  # a port that is not a number
            raise FetchRefused() from None
        if not host:
            raise FetchRefused()
        if host in self.names or (host, port) in self._checked or self.own_result_link(url, host):
            return
        addresses = resolve(host, port)
        for address in addresses:
            if not self.allows_address(address):
                raise FetchRefused()
        if addresses:
            self._checked.add((host, port))

    def own_result_link(self, url: str, host: str) -> bool:
        """This server's signed link to a job's results (a results document or an asset), on loopback or ``public_url``."""
        if self.settings is None:
            return False
        parts = urlsplit(url)
        match = _RESULT_LINK.search(parts.path)
        if not match:
            return False
        public = urlsplit(self.settings.public_url).hostname if getattr(self.settings, "public_url", None) else None
        if host != (public or "").lower() and not all(address.is_loopback for address in resolve(host, parts.port or 80)):
            return False
        query = parse_qs(parts.query)
        from terracube.errors import OpenEOError
        from terracube.jobs.signing import UrlSigner  # the results' signer: a link only this server can make

        try:
            UrlSigner.from_settings(self.settings).verify(
                unquote(match["job"]), unquote(match["name"]), (query.get("expires") or [None])[0], (query.get("signature") or [None])[0]
            )
        except OpenEOError:
            return False
        return True


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (``[]`` when it resolves to none)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return addresses


class GuardedAdapter(HTTPAdapter):
    """requests' adapter that checks every request's URL before it is sent: the first and each redirect."""

    def __init__(self, guard: FetchGuard, **kw):
        self.guard = guard
        super().__init__(**kw)

    def send(self, request, *args, **kwargs):
        self.guard.check(request.url)
        return super().send(request, *args, **kwargs)


def guard_session(session, guard: FetchGuard | None, max_retries) -> None:
    """Put ``guard`` under every http(s) request of a ``requests`` session (no-op without one)."""
    if guard is None:
        return
    adapter = GuardedAdapter(guard, max_retries=max_retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = MAX_REDIRECTS


__all__ = ["FetchGuard", "FetchRefused", "GuardedAdapter", "REFUSED", "guard_session", "internal"]
