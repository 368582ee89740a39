"""A name whose DNS answer changes between the guard's check and the connection (DNS rebinding)
does not carry a user's URL inside the server's network: the connection goes to an address that
was checked, and the name stays the name for the Host header, TLS SNI and the certificate check.

The resolver is the one thing played: ``socket.getaddrinfo`` answers for one made-up name, an
address the operator allowed (127.0.0.2) first and the server's "own network" (127.0.0.1) after,
for whoever asks (the guard, urllib3). The servers and the connections are real, on loopback.
"""

from __future__ import annotations

import json
import socket
import ssl

import pytest

from terracube.data.fetch_guard import REFUSED
from terracube.errors import OpenEOError
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

from tests.data.scripted_server import ScriptedServer

NAME = "rebind.terracube.test"
GEOJSON = json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [7.1, 50.5]}}]}).encode()
LOADERS = {
    "load_url": lambda url: {"url": url, "format": "GeoJSON"},
    "load_stac": lambda url: {"url": url},
    "load_ml_model": lambda url: {"id": url},
}


class RebindingResolver:
    """``socket.getaddrinfo`` for ``NAME``: the answers in turn, the last one repeated; other names as the system answers."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.calls = 0
        self.system = socket.getaddrinfo

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
        if str(host).lower().rstrip(".") != NAME:
            return self.system(host, port, family, type, proto, flags)
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]


@pytest.fixture
def inside():
    server = ScriptedServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def allowed():
    server = ScriptedServer("127.0.0.2")
    yield server
    server.close()


def run(process_id: str, url: str, settings: Settings):
    graph = {"process_graph": {"n": {"process_id": process_id, "arguments": LOADERS[process_id](url), "result": True}}}
    return evaluate_process_graph(parse_process_graph(graph), env=ProcessEnv(settings=settings))


@pytest.mark.parametrize("process_id", sorted(LOADERS))
def test_a_name_that_rebinds_to_loopback_after_the_check_reaches_nothing_inside(process_id, inside, monkeypatch):
    url = f"http://{NAME}:{inside.port}/thing"  # the port of a service inside, under a name that passes the check
    inside.serve("/thing", (200, b"secret"))
    # The name answers the allowed address to the first question and loopback to every later one.
    resolver = RebindingResolver("127.0.0.2", "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(OpenEOError) as error:
        run(process_id, url, Settings(stac_retries=0, stac_timeout=5, allowed_fetch_hosts=["127.0.0.2"]))
    assert (error.value.code, error.value.status) == ("ProcessParameterInvalid", 400)
    assert error.value.message.endswith(REFUSED)
    assert resolver.calls >= 2  # checked, then asked again when connecting: that answer was checked too
    assert inside.requests == []  # nothing reached the server's own network


def test_the_connection_goes_to_the_checked_address_under_the_name(allowed, inside, monkeypatch):
    allowed.serve("/points.geojson", (200, GEOJSON))
    inside.serve("/points.geojson", (200, GEOJSON))
    monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver("127.0.0.2"))
    cube = run("load_url", f"http://{NAME}:{allowed.port}/points.geojson", Settings(allowed_fetch_hosts=["127.0.0.2"]))
    assert len(cube.geometry) == 1
    assert allowed.requests == ["/points.geojson"] and inside.requests == []
    assert allowed.hosts == [f"{NAME}:{allowed.port}"]  # the Host header names the host, not the address


@pytest.fixture
def certificate_authority(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # requests trusts this authority, as it would a public one
    return authority


def https_server(authority, name: str) -> ScriptedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    return ScriptedServer("127.0.0.2", ssl_context=context)


def test_tls_checks_the_certificate_against_the_name_while_connecting_to_the_checked_address(certificate_authority, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver("127.0.0.2"))
    settings = Settings(stac_retries=0, stac_timeout=5, allowed_fetch_hosts=["127.0.0.2"])
    server = https_server(certificate_authority, NAME)
    try:
        url = server.serve("/points.geojson", (200, GEOJSON)).replace("127.0.0.2", NAME)
        assert len(run("load_url", url, settings).geometry) == 1  # SNI and the certificate name are the URL's host
        assert server.hosts == [f"{NAME}:{server.port}"]
    finally:
        server.close()
    # A certificate for another name is refused: the check was not switched off to connect by address.
    other = https_server(certificate_authority, "someone-else.test")
    try:
        url = other.serve("/points.geojson", (200, GEOJSON)).replace("127.0.0.2", NAME)
        with pytest.raises(OpenEOError) as error:
            run("load_url", url, settings)
        assert error.value.status >= 500 and other.requests == []
    finally:
        other.close()
