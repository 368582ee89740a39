"""Where the server may fetch from when a user names the URL (load_url, load_stac, load_ml_model).

A URL in a process graph is the user's, and the server fetches it from inside its own network:
without a rule, a graph could read the cloud's metadata service (169.254.169.254), the
operator's database port on 127.0.0.1 or any machine of the private network, or tell open ports
from closed ones by the wording of the errors. So before any connection the host name is
resolved and every address it resolves to is checked: loopback, private, link-local, shared,
reserved, unspecified and multicast addresses (IPv4-mapped IPv6 ones too) are refused with one
message, the same whatever listens there. Redirects are checked the same way, each one before it
is followed (``GuardedAdapter`` sits under every request of a guarded ``requests`` session).

The connection goes to an address that was checked: a guarded session's connections resolve the
name once, in ``resolve`` (the one place this module asks DNS), check every answer, and connect
to those very addresses (``PinnedHTTPConnection``), while the Host header, TLS SNI and the
certificate check keep the name. A name whose DNS answer changes between the check and the
connection (DNS rebinding) therefore reaches nothing inside. GDAL does not read a user's assets
by itself: ``guarded_read`` hands it their bytes through such a session.

What the operator allows passes: host names, addresses and networks in ``allowed_fetch_hosts``.
The archives of the collections file are the operator's and are never checked; nor are this
server's own signed result links on loopback or at ``public_url`` (a job's results feed the next
graph through them: ``load_stac_from_job``).

Limit, on purpose: with an HTTP proxy configured (``HTTP(S)_PROXY``), the proxy resolves and
connects; the address check before the request still applies, the pinning is then the proxy's."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

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
        This check comes before the request; the connection checks again what it connects to
        (``addresses``), so an answer that changes in between does not get through.
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

    def addresses(self, host: str, port: int) -> list[IPAddress] | None:
        """The addresses a connection to ``host`` may go to, all checked (``FetchRefused`` if one is
        inside), or None for a name the operator allowed (resolved as usual). ``[]``: it did not resolve."""
        host = host.lower().strip("[]").rstrip(".")
        if host in self.names:
            return None
        addresses = resolve(host, port)
        if not all(self.allows_address(address) for address in addresses):
            raise FetchRefused()
        return addresses

    def trusted(self, url: str) -> bool:
        """Whether ``url`` is this server's own signed result link (fetched without the address check)."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        return bool(host) and self.own_result_link(url, host)

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


class _Pinned:
    """A urllib3 connection that connects only to addresses its guard checked, resolved once here.

    urllib3 would resolve the name again when it connects; here the answers that were checked are
    the addresses connected to. ``host`` is untouched: the Host header, TLS SNI and the
    certificate's name check still use the name.
    """

    def __init__(self, *args, guard: FetchGuard, **kwargs):
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _new_conn(self):
        name = self._dns_host
        addresses = self.guard.addresses(name, self.port)
        if addresses is None:  # a name the operator allowed
            return super()._new_conn()
        if not addresses:
            raise NameResolutionError(self.host, self, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
        failure: Exception | None = None
        for address in addresses:  # as create_connection would: the first that answers
            self._dns_host = str(address)
            try:
                return super()._new_conn()
            except (NewConnectionError, ConnectTimeoutError) as error:
                failure = error
            finally:
                self._dns_host = name
        raise failure


class PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedPoolManager(PoolManager):
    """urllib3's pool manager whose connections go only to addresses ``guard`` checked."""

    def __init__(self, guard: FetchGuard, **kw):
        super().__init__(**kw)
        self.guard = guard
        self.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["guard"] = self.guard
        return pool


class GuardedAdapter(HTTPAdapter):
    """requests' adapter that checks every request's URL before it is sent (the first and each
    redirect) and connects only to checked addresses; this server's own result links go as usual."""

    def __init__(self, guard: FetchGuard, **kw):
        self.guard = guard
        self.own_links = HTTPAdapter(**kw)
        super().__init__(**kw)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = PinnedPoolManager(self.guard, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs)

    def send(self, request, *args, **kwargs):
        if self.guard.trusted(request.url):
            return self.own_links.send(request, *args, **kwargs)
        self.guard.check(request.url)
        return super().send(request, *args, **kwargs)

    def close(self):
        self.own_links.close()
        super().close()


def guard_session(session, guard: FetchGuard | None, max_retries) -> None:
    """Put ``guard`` under every http(s) request of a ``requests`` session (no-op without one)."""
    if guard is None:
        return
    adapter = GuardedAdapter(guard, max_retries=max_retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = MAX_REDIRECTS


__all__ = ["FetchGuard", "FetchRefused", "GuardedAdapter", "PinnedPoolManager", "REFUSED", "guard_session", "internal", "resolve"]
