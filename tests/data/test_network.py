"""data/network.py's download: what a user's URL answers becomes the file or an openEO error."""

from __future__ import annotations

import io
import socket

import pytest

from terracube.data.network import download
from terracube.errors import OpenEOError
from terracube.settings import Settings

from tests.data.scripted_server import ScriptedServer


@pytest.fixture
def server():
    server = ScriptedServer()
    yield server
    server.close()


def loopback_allowed(**fields) -> Settings:
    """The test servers are on 127.0.0.1, which users' URLs may reach only when the operator allows it."""
    return Settings(allowed_fetch_hosts=["127.0.0.1"], **fields)


def fetch(url: str, max_bytes: int = 1024, settings: Settings | None = None) -> bytes:
    out = io.BytesIO()
    download(url, out, settings or loopback_allowed(), max_bytes=max_bytes, doing="Downloading the file")
    return out.getvalue()


def test_a_file_is_downloaded_whole(server):
    assert fetch(server.serve("/a.bin", (200, b"x" * 1000))) == b"x" * 1000


def test_a_busy_server_is_asked_again(server):
    url = server.serve("/busy.bin", (503, b""), (503, b""), (200, b"at last"))
    assert fetch(url, settings=loopback_allowed(stac_retries=2)) == b"at last"
    assert server.requests == ["/busy.bin"] * 3


def test_a_missing_file_is_file_not_found_without_the_query_string(server):
    with pytest.raises(OpenEOError) as error:
        fetch(server.url + "/gone.nc?token=SECRET")
    assert (error.value.code, error.value.status) == ("FileNotFound", 404)
    assert f"'{server.url}/gone.nc'" in error.value.message and "SECRET" not in error.value.message


def test_a_file_over_the_limit_is_refused(server):
    with pytest.raises(OpenEOError) as error:
        fetch(server.serve("/big.bin", (200, b"x" * 2048)), max_bytes=1024)
    assert error.value.code == "ProcessParameterInvalid" and "larger than" in error.value.message


@pytest.mark.parametrize("status, code", [(500, "ArchiveUnavailable"), (403, "ArchiveAccessDenied")])
def test_a_failing_server_is_an_upstream_error(server, status, code):
    with pytest.raises(OpenEOError) as error:
        fetch(server.serve("/broken.bin", (status, b"")) + "?sig=SECRET", settings=loopback_allowed(stac_retries=0))
    assert (error.value.code, error.value.status) == (code, 502)
    assert f"HTTP {status}" in error.value.message and "SECRET" not in error.value.message


def test_an_unreachable_server_is_archive_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OpenEOError) as error:
        fetch(f"http://127.0.0.1:{port}/a.nc?token=SECRET", settings=loopback_allowed(stac_retries=0))
    assert (error.value.code, error.value.status) == ("ArchiveUnavailable", 502) and "SECRET" not in error.value.message
