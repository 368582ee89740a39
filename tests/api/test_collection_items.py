"""``GET /collections/{id}/items``: the STAC API item search, on a live server, as clients use it.

What is expected comes from the archive's own STAC items on disk (read with pystac), never from the
server; the embedded archive is searched over the Ahr valley in June and July 2021 with at most 20 %
cloud, as the Browser's search does. pystac-client reads the route like any STAC API collection, and
a collection backed by a STAC API on loopback (Earth Search's protocol) answers the same search.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import jsonschema
import numpy as np
import pystac
import pytest
import rasterio
import requests
from PIL import Image
from rasterio.windows import Window

from tests.conftest import TUTORIAL_AOI
from tests.live_server import LiveServer
from tests.stac import archive
from tests.stac.fake_earth_search import FakeEarthSearch, earth_search_items
from tests.stac.stac_api_server import StacApiServer

COLLECTION = "SENTINEL2_L2A"
AOI = ",".join(str(TUTORIAL_AOI[k]) for k in ("west", "south", "east", "north"))
JUNE_JULY = "2021-06-01T00:00:00Z/2021-07-31T23:59:59Z"
CLEAR = "eo:cloud_cover<=20"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@pytest.fixture(scope="module")
def archive_items(data_dir) -> list[pystac.Item]:
    """The embedded archive's items as its static catalog on disk holds them."""
    collection = pystac.Catalog.from_file(str(data_dir / "sample" / "catalog.json")).get_child(COLLECTION)
    return list(collection.get_items(recursive=True))


def expected(items, bbox=None, start=None, end=None, max_cloud=None) -> list[str]:
    """Ids of the matching items, newest first (the order the server promises)."""
    chosen = []
    for item in items:
        west, south, east, north = item.bbox
        if bbox and (west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]):
            continue
        if start and item.datetime < start or end and item.datetime > end:
            continue
        if max_cloud is not None and not item.properties["eo:cloud_cover"] <= max_cloud:
            continue
        chosen.append(item)
    return [item.id for item in sorted(chosen, key=lambda i: (i.datetime, i.id), reverse=True)]


def search(url: str, collection: str = COLLECTION, **params) -> requests.Response:
    return requests.get(f"{url}/collections/{collection}/items", params=params, timeout=120)


def all_pages(first_url: str, params: dict | None = None) -> list[dict]:
    pages, url = [], first_url
    while url:
        answer = requests.get(url, params=params if not pages else None, timeout=120)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        url = next((link["href"] for link in pages[-1]["links"] if link["rel"] == "next"), None)
        assert len(pages) < 50
    return pages


def check_item(feature: dict, server_url: str, collection: str) -> None:
    """The STAC Item's structure (the schemas are online; this checks what clients rely on)."""
    assert feature["type"] == "Feature" and feature["stac_version"].startswith("1.")
    assert isinstance(feature["id"], str) and feature["collection"] == collection
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"][0]) >= 4
    west, south, east, north = feature["bbox"]
    assert west < east and south < north
    for x, y in feature["geometry"]["coordinates"][0]:
        assert west - 1e-9 <= x <= east + 1e-9 and south - 1e-9 <= y <= north + 1e-9
    properties = feature["properties"]
    utc(properties["datetime"])
    assert 0 <= properties["eo:cloud_cover"] <= 100 and properties["platform"].startswith("sentinel-2")
    rels = {link["rel"]: link["href"] for link in feature["links"]}
    assert rels["self"] == f"{server_url}/collections/{collection}/items/{feature['id']}"
    assert rels["collection"] == rels["parent"] == f"{server_url}/collections/{collection}" and rels["root"] == f"{server_url}/"
    assert feature["assets"] and all(asset["href"].startswith("http") for asset in feature["assets"].values())


# --- the embedded archive ----------------------------------------------------------------------
def test_clear_scenes_of_the_ahr_valley_in_june_and_july(server, archive_items, data_dir):
    answer = search(server.url, bbox=AOI, datetime=JUNE_JULY, filter=CLEAR, limit=100)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    bbox = [TUTORIAL_AOI[k] for k in ("west", "south", "east", "north")]
    wanted = expected(archive_items, bbox, utc("2021-06-01T00:00:00Z"), utc("2021-07-31T23:59:59Z"), 20)
    assert 5 <= len(wanted) < len([i for i in archive_items if i.datetime.month in (6, 7)])  # the filter does filter
    assert [f["id"] for f in document["features"]] == wanted
    assert document["type"] == "FeatureCollection"
    assert document["numberReturned"] == document["numberMatched"] == len(wanted)
    utc(document["timeStamp"])
    rels = {link["rel"]: link["href"] for link in document["links"]}
    assert rels["self"].startswith(f"{server.url}/collections/{COLLECTION}/items?") and "next" not in rels
    assert rels["root"] == f"{server.url}/" and rels["collection"] == f"{server.url}/collections/{COLLECTION}"
    on_disk = {item.id: item for item in archive_items}
    for feature in document["features"]:
        check_item(feature, server.url, COLLECTION)
        item = on_disk[feature["id"]]
        assert feature["properties"]["eo:cloud_cover"] == item.properties["eo:cloud_cover"] <= 20
        assert feature["bbox"] == item.bbox and utc(feature["properties"]["datetime"]) == item.datetime
        assert set(item.assets) <= set(feature["assets"]) and feature["assets"]["thumbnail"]["type"] == "image/png"
    # No path of the server's disk leaves it.
    assert str(data_dir) not in answer.text and "file:" not in answer.text and '"./' not in answer.text


@pytest.mark.parametrize("params", [
    {"filter": "eo:cloud_cover <= 20", "filter-lang": "cql2-text"},
    {"filter": '"eo:cloud_cover"<=20'},
    {"filter": json.dumps({"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]}), "filter-lang": "cql2-json"},
    {"query": json.dumps({"eo:cloud_cover": {"lte": 20}})},
])
def test_every_form_of_the_cloud_filter_gives_the_same_scenes(server, archive_items, params):
    answer = search(server.url, datetime=JUNE_JULY, limit=100, **params)
    assert answer.status_code == 200, answer.text
    wanted = expected(archive_items, None, utc("2021-06-01T00:00:00Z"), utc("2021-07-31T23:59:59Z"), 20)
    assert [f["id"] for f in answer.json()["features"]] == wanted


def test_comparisons_split_the_archive(server, archive_items):
    cloud = {item.id: item.properties["eo:cloud_cover"] for item in archive_items}
    found = {}
    for op in ("<", "<=", ">", ">=", "="):
        answer = search(server.url, filter=f"eo:cloud_cover{op}20", limit=1000)
        assert answer.status_code == 200, answer.text
        found[op] = {f["id"] for f in answer.json()["features"]}
    assert found["<"] == {i for i, c in cloud.items() if c < 20} and found[">="] == {i for i, c in cloud.items() if c >= 20}
    assert found["<="] | found[">"] == set(cloud) and not found["<="] & found[">"]
    assert found["="] == {i for i, c in cloud.items() if c == 20}
    between = search(server.url, filter="eo:cloud_cover>=10 AND eo:cloud_cover<50", limit=1000).json()
    assert {f["id"] for f in between["features"]} == {i for i, c in cloud.items() if 10 <= c < 50}


def test_next_links_page_through_every_scene_once(server, archive_items):
    params = {"datetime": JUNE_JULY, "filter": CLEAR, "limit": 4}
    pages = all_pages(f"{server.url}/collections/{COLLECTION}/items", params)
    ids = [f["id"] for page in pages for f in page["features"]]
    wanted = expected(archive_items, None, utc("2021-06-01T00:00:00Z"), utc("2021-07-31T23:59:59Z"), 20)
    assert ids == wanted and len(set(ids)) == len(ids)
    assert len(pages) == -(-len(wanted) // 4) and all(len(page["features"]) <= 4 for page in pages)
    assert all(page["numberReturned"] == len(page["features"]) and page["numberMatched"] == len(wanted) for page in pages)
    # The next link keeps the search: each page's self link carries the filter.
    assert all("filter=eo%3Acloud_cover" in next(link["href"] for link in page["links"] if link["rel"] == "self") for page in pages)


def test_open_intervals_and_instants(server, archive_items):
    august = search(server.url, datetime="2021-08-01T00:00:00Z/..", limit=1000).json()
    assert [f["id"] for f in august["features"]] == expected(archive_items, start=utc("2021-08-01T00:00:00Z"))
    early = search(server.url, datetime="../2021-06-10", limit=1000).json()  # a date as the end: the whole day
    assert [f["id"] for f in early["features"]] == expected(archive_items, end=utc("2021-06-10T23:59:59.999999Z"))
    also_early = search(server.url, datetime="/2021-06-10T23:59:59Z", limit=1000).json()
    assert [f["id"] for f in also_early["features"]] == [f["id"] for f in early["features"]] and early["features"]
    one = archive_items[5]
    instant = search(server.url, datetime=one.datetime.strftime("%Y-%m-%dT%H:%M:%SZ")).json()
    assert [f["id"] for f in instant["features"]] == [one.id]


def test_the_default_limit_is_ten_and_a_larger_one_is_the_maximum(server, archive_items):
    first = search(server.url).json()
    assert first["numberReturned"] == 10 and first["numberMatched"] == len(archive_items)
    assert any(link["rel"] == "next" for link in first["links"])
    everything = search(server.url, limit=5000)
    assert everything.status_code == 200 and everything.json()["numberReturned"] == len(archive_items)


@pytest.mark.parametrize("params, named", [
    ({"bbox": "7.0,50.5,7.1"}, "bbox"),
    ({"bbox": "west,50.5,7.1,50.6"}, "bbox"),
    ({"bbox": "7.0,50.6,7.1,50.5"}, "bbox"),
    ({"bbox": "190,50,191,51"}, "bbox"),
    ({"datetime": "yesterday"}, "datetime"),
    ({"datetime": "2021-07-01/2021-06-01"}, "datetime"),
    ({"datetime": "../.."}, "datetime"),
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"filter": "platform = 'sentinel-2a'"}, "eo:cloud_cover"),
    ({"filter": "eo:cloud_cover LIKE 2"}, "eo:cloud_cover"),
    ({"filter": "eo:cloud_cover<=20", "filter-lang": "ecql"}, "cql2-text"),
    ({"filter": '{"op": "like", "args": [{"property": "eo:cloud_cover"}, 2]}', "filter-lang": "cql2-json"}, "eo:cloud_cover"),
    ({"query": "{not json"}, "query"),
    ({"query": '{"eo:cloud_cover": {"like": 20}}'}, "eo:cloud_cover"),
    ({"token": "not-a-token"}, "token"),
    ({"sortby": "-datetime"}, "sortby"),
])
def test_bad_input_is_a_400_that_names_the_problem(server, params, named):
    answer = search(server.url, **params)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["code"] == "BadRequest" and named in error["message"] and error["id"]


def test_unknown_collection_and_item_are_404(server, archive_items):
    for path in ("/collections/NOT_THERE/items", f"/collections/NOT_THERE/items/{archive_items[0].id}"):
        answer = requests.get(server.url + path, timeout=60)
        assert answer.status_code == 404 and answer.json()["code"] == "CollectionNotFound"
    answer = requests.get(f"{server.url}/collections/{COLLECTION}/items/S2A_NOT_A_SCENE", timeout=60)
    assert answer.status_code == 404 and answer.json()["code"] == "ItemNotFound" and "S2A_NOT_A_SCENE" in answer.json()["message"]
    answer = requests.get(f"{server.url}/collections/{COLLECTION}/items/{archive_items[0].id}/assets/B99", timeout=60)
    assert answer.status_code == 404 and answer.json()["code"] == "FileNotFound"


def test_one_item_is_the_one_the_search_lists(server, archive_items):
    listed = search(server.url, datetime=JUNE_JULY, filter=CLEAR, limit=1).json()["features"][0]
    answer = requests.get(f"{server.url}/collections/{COLLECTION}/items/{listed['id']}", timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/geo+json")
    assert answer.json() == listed


def test_the_assets_are_the_archive_files_read_over_http(server, archive_items):
    item = next(i for i in archive_items if i.properties["eo:cloud_cover"] <= 20)
    feature = requests.get(f"{server.url}/collections/{COLLECTION}/items/{item.id}", timeout=60).json()
    window = Window(300, 200, 64, 48)
    with rasterio.open(f"/vsicurl/{feature['assets']['B04']['href']}") as remote, rasterio.open(item.assets["B04"].get_absolute_href()) as local:
        assert remote.profile["crs"] == local.profile["crs"] and remote.transform == local.transform
        assert np.array_equal(remote.read(1, window=window), local.read(1, window=window))
    quicklook = requests.get(feature["assets"]["thumbnail"]["href"], timeout=120)
    assert quicklook.status_code == 200 and quicklook.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(quicklook.content)))
    assert max(picture.shape[:2]) == 256 and picture.shape[2] == 4
    assert picture[..., 1].std() > 1  # a landscape, not a blank


def test_the_collection_links_its_items_and_the_server_declares_features(server):
    collection = requests.get(f"{server.url}/collections/{COLLECTION}", timeout=60).json()
    assert {"rel": "items", "href": f"{server.url}/collections/{COLLECTION}/items", "type": "application/geo+json"} in collection["links"]
    conforms = requests.get(f"{server.url}/conformance", timeout=60).json()["conformsTo"]
    assert "https://api.stacspec.org/v1.0.0/ogcapi-features" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert requests.get(f"{server.url}/", timeout=60).json()["conformsTo"] == conforms  # the API asks for both to be equal


def test_answers_match_the_schemas_the_openapi_document_declares(server):
    # The openEO API document has no operation for the items (it points to STAC API - Features);
    # the server's /openapi.json declares its own, and the answers must match them.
    document = requests.get(f"{server.url}/openapi.json", timeout=60).json()
    listing = document["paths"]["/collections/{collection_id}/items"]["get"]["responses"]["200"]["content"]["application/geo+json"]["schema"]
    one = document["paths"]["/collections/{collection_id}/items/{item_id}"]["get"]["responses"]["200"]["content"]["application/geo+json"]["schema"]
    page = search(server.url, datetime=JUNE_JULY, limit=3).json()
    jsonschema.validate(page, listing)
    jsonschema.validate(requests.get(page["features"][0]["links"][0]["href"], timeout=60).json(), one)


# The server declares STAC API - Features, not item-search (no /search) nor the filter extension's
# classes (its filter is the cloud cover only): pystac-client says so, and sends the filter anyway.
@pytest.mark.filterwarnings("ignore::pystac_client.warnings.DoesNotConformTo")
def test_pystac_client_reads_the_items_like_any_stac_api(server, archive_items):
    from pystac_client import Client, ItemSearch
    from pystac_client.conformance import ConformanceClasses

    client = Client.open(server.url)
    assert client.conforms_to(ConformanceClasses.FEATURES)
    collection = client.get_collection(COLLECTION)
    items_url = collection.get_single_link("items").href
    found = ItemSearch(items_url, method="GET", client=client, bbox=[TUTORIAL_AOI[k] for k in ("west", "south", "east", "north")],
                       datetime="2021-06-01/2021-07-31", filter=CLEAR, limit=3).item_collection()
    bbox = [TUTORIAL_AOI[k] for k in ("west", "south", "east", "north")]
    assert [item.id for item in found] == expected(archive_items, bbox, utc("2021-06-01T00:00:00Z"), utc("2021-07-31T23:59:59.999999Z"), 20)
    one = collection.get_item(found.items[0].id)  # /collections/{id}/items/{item_id}, as STAC API - Features has it
    assert one.id == found.items[0].id and one.properties["eo:cloud_cover"] <= 20


# --- a collection backed by a STAC API --------------------------------------------------------
def _live_server(data_dir, tmp_path, collection_id: str, url: str, extra: str = "") -> LiveServer:
    config = tmp_path / "collections.toml"
    config.write_text(f'[[collection]]\nid = "{collection_id}"\nenabled = true\nstac_url = "{url}"\n{extra}', encoding="utf-8")
    return LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_COLLECTIONS_FILE": str(config)}).start()


def test_an_earth_search_collection_answers_the_same_search(server, data_dir, tmp_path):
    """The sample's items on an Earth Search-shaped API (POST paging with 'next' bodies, pages of two
    whatever the limit): the same scenes as the embedded archive, paged without loss or repeat."""
    sample = data_dir / "sample"
    items = earth_search_items(str(sample / "catalog.json"), "http://127.0.0.1:9/cogs", str(sample))
    with FakeEarthSearch(items, [6.9, 50.4, 7.3, 50.7]) as api:
        live = _live_server(data_dir, tmp_path, "EARTH_SEARCH_S2_L2A", api.url)
        try:
            params = {"bbox": AOI, "datetime": JUNE_JULY, "filter": CLEAR, "limit": 5}
            pages = all_pages(f"{live.url}/collections/EARTH_SEARCH_S2_L2A/items", params)
            embedded = search(server.url, bbox=AOI, datetime=JUNE_JULY, filter=CLEAR, limit=100).json()
            ids = [f["id"] for page in pages for f in page["features"]]
            assert sorted(ids) == sorted(f["id"] for f in embedded["features"]) and len(set(ids)) == len(ids)
            assert all(len(page["features"]) <= 5 for page in pages) and len(pages) == -(-len(ids) // 5)
            assert all(q.get("query") == {"eo:cloud_cover": {"lte": 20}} for q in api.queries)  # filtered by the archive
            for feature in pages[0]["features"]:
                check_item(feature, live.url, "EARTH_SEARCH_S2_L2A")
                assert feature["assets"]["red"]["href"].startswith("http://127.0.0.1:9/cogs/")  # the archive's own URL
        finally:
            live.stop()


def test_a_stac_api_with_cql2_and_get_paging_answers_too(data_dir, tmp_path):
    """The loopback STAC API of tests/stac (token paging, pages of two), as CDSE: CQL2 filters, no query extension."""
    from tests.stac.stac_api_server import CONFORMANCE_FILTER_ONLY

    documents = archive.items("http://127.0.0.1:9/cogs")
    with StacApiServer([archive.collection_document()], documents, conformance=CONFORMANCE_FILTER_ONLY) as api:
        live = _live_server(data_dir, tmp_path, "EARTH_SEARCH_S2_L2A", api.url)
        try:
            pages = all_pages(f"{live.url}/collections/EARTH_SEARCH_S2_L2A/items", {"filter": "eo:cloud_cover<10", "limit": 3})
            ids = [f["id"] for page in pages for f in page["features"]]
            assert sorted(ids) == sorted(d["id"] for d in documents if d["properties"]["eo:cloud_cover"] < 10)
            assert len(ids) == len(set(ids)) == 5 and [len(p["features"]) for p in pages] == [3, 2]
            assert pages[0]["numberMatched"] == 5
            assert all(s.get("filter") == {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10.0]} for s in api.searches)
            later = search(live.url, "EARTH_SEARCH_S2_L2A", datetime="2022-01-01T00:00:00Z/..").json()
            assert sorted(f["id"] for f in later["features"]) == sorted(d["id"] for d in documents if d["properties"]["datetime"] >= "2022")
            one = requests.get(f"{live.url}/collections/EARTH_SEARCH_S2_L2A/items/{ids[0]}", timeout=60)  # by ids in the search
            assert one.status_code == 200 and one.json() == pages[0]["features"][0]
            missing = requests.get(f"{live.url}/collections/EARTH_SEARCH_S2_L2A/items/NOPE", timeout=60)
            assert missing.status_code == 404 and missing.json()["code"] == "ItemNotFound"
        finally:
            live.stop()
