"""URLs users put into graphs (load_url, load_stac, load_ml_model) do not reach inside the server's network.

The servers here are real, on loopback: 127.0.0.1 plays the server's own network, 127.0.0.2 a
host the operator allowed. 10.x and 169.254.x are never connected to: the refusal comes before
any connection, which the time taken and the servers' empty request logs show.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time

import pytest

from terracube.data.fetch_guard import REFUSED, FetchGuard, internal
from terracube.errors import OpenEOError
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

from tests.data.scripted_server import ScriptedServer

LOADERS = {
    "load_url": lambda url: {"url": url, "format": "GTiff"},
    "load_stac": lambda url: {"url": url},
    "load_ml_model": lambda url: {"id": url},
}


@pytest.fixture
def inside():
    """A server in the server's "own network" (127.0.0.1), which users may not reach."""
    server = ScriptedServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def allowed():
    """A server the operator allowed (127.0.0.2)."""
    server = ScriptedServer("127.0.0.2")
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(process_id: str, url: str, settings: Settings):
    graph = {"process_graph": {"n": {"process_id": process_id, "arguments": LOADERS[process_id](url), "result": True}}}
    return evaluate_process_graph(parse_process_graph(graph), env=ProcessEnv(settings=settings))


def refusal(process_id: str, url: str, settings: Settings | None = None) -> tuple[OpenEOError, float]:
    started = time.monotonic()
    with pytest.raises(OpenEOError) as error:
        run(process_id, url, settings or Settings(stac_retries=0, stac_timeout=5))
    return error.value, time.monotonic() - started


@pytest.mark.parametrize("process_id", sorted(LOADERS))
def test_inside_addresses_are_refused_alike_whatever_the_port(process_id, inside):
    open_url = inside.serve("/thing", (200, b"secret"))
    port = inside.url.rsplit(":", 1)[1]
    urls = [
        open_url,  # an open port
        f"http://127.0.0.1:{closed_port()}/thing",  # a closed one
        "http://10.0.0.1/thing",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/thing",
        f"http://[::ffff:127.0.0.1]:{port}/thing",
        f"http://localhost:{port}/thing",  # a name resolving to loopback
        "http://0.0.0.0/thing",
        f"http://2130706433:{port}/thing",  # 127.0.0.1 as one number
    ]
    answers = [refusal(process_id, url) for url in urls]
    for url, (error, took) in zip(urls, answers):
        assert (error.code, error.status) == ("ProcessParameterInvalid", 400) and error.message.endswith(REFUSED), url
        assert took < 1.5, (url, took)  # no connection attempt, no timeout waited for
    assert len({error.message for error, _ in answers}) == 1  # one message, whatever answers there
    assert inside.requests == []  # nothing reached the server


@pytest.mark.parametrize("process_id", sorted(LOADERS))
def test_a_redirect_into_the_network_is_refused(process_id, inside, allowed):
    target = inside.serve("/thing", (200, b"secret"))
    settings = Settings(stac_retries=0, allowed_fetch_hosts=["127.0.0.2"])
    error, _ = refusal(process_id, allowed.serve("/moved", (302, target.encode())), settings)
    assert error.code == "ProcessParameterInvalid" and error.message.endswith(REFUSED)
    assert allowed.requests == ["/moved"] and inside.requests == []


def test_an_allowed_host_is_fetched(allowed, tmp_path):
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [7.1, 50.5]}}]}
    url = allowed.serve("/points.geojson", (200, json.dumps(geojson).encode()))
    for allow in (["127.0.0.2"], ["127.0.0.0/30"]):
        graph = {"process_graph": {"n": {"process_id": "load_url", "arguments": {"url": url, "format": "GeoJSON"}, "result": True}}}
        cube = evaluate_process_graph(parse_process_graph(graph), env=ProcessEnv(settings=Settings(allowed_fetch_hosts=allow)))
        assert len(cube.geometry) == 1
    # A redirect to another allowed address is followed.
    moved = allowed.serve("/old.geojson", (301, url.encode()))
    graph = {"process_graph": {"n": {"process_id": "load_url", "arguments": {"url": moved, "format": "GeoJSON"}, "result": True}}}
    assert len(evaluate_process_graph(parse_process_graph(graph), env=ProcessEnv(settings=Settings(allowed_fetch_hosts=["127.0.0.2"]))).geometry) == 1


def test_a_stac_item_from_an_allowed_host_may_not_point_its_assets_inside(inside, allowed):
    asset = inside.serve("/B04.tif", (200, b"not read"))
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "x", "bbox": [7, 50, 7.1, 50.1],
        "geometry": {"type": "Polygon", "coordinates": [[[7, 50], [7.1, 50], [7.1, 50.1], [7, 50.1], [7, 50]]]},
        "properties": {"datetime": "2021-07-21T10:00:00Z"}, "links": [],
        "assets": {"B04": {"href": asset, "type": "image/tiff; application=geotiff", "roles": ["data"]}},
    }
    error, _ = refusal("load_stac", allowed.serve("/item.json", (200, json.dumps(item).encode())),
                       Settings(stac_retries=0, allowed_fetch_hosts=["127.0.0.2"]))
    assert error.code == "ProcessParameterInvalid" and error.message.endswith(REFUSED)
    assert allowed.requests == ["/item.json"] and inside.requests == []


@pytest.mark.parametrize("address, inside_network", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True), ("169.254.169.254", True),
    ("100.64.0.1", True), ("0.0.0.0", True), ("224.0.0.1", True), ("255.255.255.255", True), ("::1", True), ("fe80::1", True),
    ("fc00::1", True), ("::ffff:10.0.0.1", True), ("::", True), ("ff02::1", True),
    ("8.8.8.8", False), ("140.82.112.3", False), ("2606:4700::1111", False), ("::ffff:8.8.8.8", False),
])
def test_which_addresses_are_inside(address, inside_network):
    assert internal(ipaddress.ip_address(address)) is inside_network


def test_the_allow_list_takes_names_addresses_and_networks():
    guard = FetchGuard(["stac.internal.example", "10.1.0.0/16", "[::1]"])
    guard.check("http://stac.internal.example/a")  # not resolved: the operator named it
    guard.check("http://10.1.2.3/a")
    guard.check("http://[::1]:8080/a")
    for url in ("http://10.2.0.1/a", "http://127.0.0.1/a", "http://[fe80::1]/a"):
        with pytest.raises(OpenEOError):
            guard.check(url)


def test_only_urls_inside_a_configured_archive_are_trusted():
    from terracube.processes.load_stac import _within

    base = "http://stac.internal:8080/v1"
    assert _within("http://stac.internal:8080/v1/collections/x", base) and _within("http://STAC.internal:8080/v1", base)
    for url in ("http://stac.internal:8080/v1x/a", "http://stac.internal.evil.example:8080/v1/a", "http://stac.internal:80801/v1/a",
                "https://stac.internal:8080/v1/a", "http://stac.internal:8080@evil.example/v1/a"):
        assert not _within(url, base), url
