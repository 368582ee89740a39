"""Talking to archives over the network: timeouts, retries, and what a failure tells the user.

Every STAC request goes through a ``requests`` session with a connect and read timeout and a
bounded number of retries; every COG read runs in a GDAL environment with its own timeouts (see
``reader``). Whatever goes wrong ends as an openEO error that names the archive (its URL without
query string, which may hold a token) and what it answered:

- ``ArchiveUnavailable`` (HTTP 502): the archive could not be reached, answered with an error
  (5xx, 404 for something the collections file names), or sent something that is not STAC;
- ``ArchiveUnavailable`` (HTTP 504): the archive did not answer within the timeout;
- ``ArchiveAccessDenied`` (HTTP 502): the archive refused access (401/403): credentials missing
  or wrong in the server's configuration.

Files a user names by URL (``load_url``, ``load_ml_model``) are fetched by ``download``: the same
timeouts and retries, a size limit, and ``FileNotFound`` (404) when the URL answers 404 or 410.
A user's URL, and each redirect it answers with, must not point inside the server's network
(``fetch_guard``): one refusal, made before any connection, and the connection goes to the
address that was checked.

These are 5xx because the user's request was fine and the server could not do its part; the
status says "an upstream failed", and the message says which and why. A 500 stays reserved for
bugs. ``load_stac`` is different: there the user chose the URL, so a document it cannot read is
the user's ``ProcessParameterInvalid`` (400), see ``processes/load_stac.py``.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from terracube.data.fetch_guard import REFUSED, FetchGuard, FetchRefused, guard_session
from terracube.errors import FileNotFound, OpenEOError, ProcessParameterInvalid
from terracube.settings import Settings


class ArchiveUnavailable(OpenEOError):
    code = "ArchiveUnavailable"
    status = 502


class ArchiveAccessDenied(OpenEOError):
    code = "ArchiveAccessDenied"
    status = 502


def redact(url: str) -> str:
    """A URL fit for an error message or a log: no query string (SAS tokens, signatures), no user info."""
    if not isinstance(url, str) or "://" not in url:
        return str(url)
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """Every URL inside a message, redacted."""
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", lambda m: redact(m.group(0)), str(text))


def retry_policy(retries: int) -> Retry:
    """Retry what is worth retrying, quickly: refused/reset connections and 429/502/503/504.

    Read timeouts are not retried (a server that did not answer in time would make the user wait
    twice), nor other statuses (a 403 or a 500 will say the same again). ``Retry-After`` is not
    honoured, so an archive cannot make a request wait longer than the configured timeout.
    """
    return Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        other=0,
        backoff_factor=0.5,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=None,  # STAC searches are POSTs and idempotent
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def timeouts(settings: Settings) -> tuple[float, float]:
    read = float(settings.stac_timeout)
    return (min(read, 10.0), read)


def retries(settings: Settings) -> int:
    return int(settings.stac_retries)


def http_session(retries: int, headers: dict[str, str] | None = None, guard: FetchGuard | None = None) -> requests.Session:
    """A session with the timeouts' retries; with ``guard``, every request and redirect is checked first."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(retries))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    guard_session(session, guard, retry_policy(retries))
    if headers:
        session.headers.update(headers)
    return session


def headers_from_environment(names: dict[str, str], what: str) -> dict[str, str]:
    """``{"Authorization": "MY_TOKEN_VARIABLE"}`` -> the header with the variable's value."""
    headers = {}
    for header, variable in names.items():
        if variable in os.environ:
            headers[header] = os.environ[variable]
    return headers


def download(url: str, out: BinaryIO, settings: Settings, *, max_bytes: int, doing: str) -> int:
    """GET a file a user named into ``out``, at most ``max_bytes``; returns its size.

    A URL that answers 404 or 410 is ``FileNotFound``, a file larger than ``max_bytes`` the user's
    ``ProcessParameterInvalid``; anything else that fails is ``failure``'s openEO error. Every
    message names the URL without its query string.
    """
    where = redact(url)
    too_large = f"The file at {where} is larger than {max_bytes // 1024**2} MiB."
    guard = FetchGuard.from_settings(settings)
    guard.check(url)  # before anything else: the refusal is the same whatever listens there
    session = http_session(retries(settings), guard=guard)
    try:
        with session.get(url, stream=True, timeout=timeouts(settings)) as response:
            if response.status_code in (404, 410):
                raise FileNotFound(where, f"The server there answered HTTP {response.status_code}.")
            if response.status_code in (401, 403):
                # Not the archives' case (a credential the operator configures): the user gave a URL that needs a login.
                raise ArchiveAccessDenied(
                    f"{doing} at {where} was refused (HTTP {response.status_code}): give a URL that needs no login, a signed URL for example."
                )
            response.raise_for_status()
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ProcessParameterInvalid(too_large)
            size = 0
            for chunk in response.iter_content(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise ProcessParameterInvalid(too_large)
                out.write(chunk)
            return size
    except requests.RequestException as error:
        raise failure(error, url, doing) from None
    finally:
        session.close()


def failure(error: BaseException, url: str, doing: str) -> OpenEOError:
    """The openEO error for a failed request to an archive (requests' and pystac-client's errors)."""
    from pystac_client.exceptions import APIError

    where = redact(url)
    if isinstance(error, OpenEOError):
        return error
    if REFUSED in str(error):  # the guard refused a redirect; pystac-client wraps every error in its own
        return FetchRefused()
    if isinstance(error, requests.Timeout) or "timed out" in str(error).lower():
        return ArchiveUnavailable(f"{doing} at {where} timed out: the archive did not answer in time. Try again later.", status=504)
    status = getattr(error, "status_code", None)
    if status is None and isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
    if status in (401, 403):
        return ArchiveAccessDenied(
            f"{doing} at {where} was refused (HTTP {status}): the archive denies access. "
            "The server's credentials for this archive are missing or wrong; tell its operator."
        )
    if status is not None:
        return ArchiveUnavailable(f"{doing} at {where} failed: the archive answered HTTP {status}. {_detail(error)}".strip())
    if isinstance(error, (requests.ConnectionError, OSError)) or _CONNECTION.search(str(error)):
        return ArchiveUnavailable(f"{doing} at {where} failed: the archive could not be reached ({_reason(error)}).")
    if isinstance(error, APIError):
        return ArchiveUnavailable(f"{doing} at {where} failed: {redact_text(str(error))[:300]}")
    return ArchiveUnavailable(f"{doing} at {where} failed: {type(error).__name__}: {redact_text(str(error))[:300]}")


_CONNECTION = re.compile(r"Max retries exceeded|Connection refused|NewConnectionError|NameResolutionError|Connection reset|RemoteDisconnected")


def _detail(error: BaseException) -> str:
    text = redact_text(str(error)).strip()
    return text[:300] if text and not text.isdigit() else ""


def _reason(error: BaseException) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "Temporary failure in name resolution",
                   "Connection reset", "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "no answer after retries"
    return redact_text(text)[:200]
