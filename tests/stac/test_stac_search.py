"""A STAC API collection in the catalog: its metadata, searches paged to the end, property filters."""

from __future__ import annotations

import pandas as pd
import pytest

from terracube.data.catalog import Catalog
from terracube.data.properties import Condition, conditions, cql2_filter, stac_query
from terracube.graph.evaluate import Callback, Evaluator
from terracube.graph.model import parse_process_graph
from terracube.execute import execute, request_env
from terracube.settings import Settings

from tests.stac import archive
from tests.stac.conftest import COLLECTION, settings_for, window
from tests.stac.stac_api_server import CONFORMANCE_FILTER_ONLY, StacApiServer


def callback(process_graph: dict) -> Callback:
    return Callback(parse_process_graph({"process_graph": process_graph}), Evaluator(), {})


def cloud_cover_at_most(limit) -> dict:
    return {"process_graph": {"c": {"process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": limit}, "result": True}}}


def load_graph(period, **arguments) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {"id": COLLECTION, "spatial_extent": window(),
                                                                  "temporal_extent": period, "bands": ["B04"], **arguments}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "netCDF"}, "result": True},
    }}


def test_stac_collection_shows_the_archives_metadata_with_cdse_band_names(es_catalog, stac_api):
    document = es_catalog.stac_collection(COLLECTION)
    # The archive's own extent, summaries and providers...
    assert document["extent"]["spatial"]["bbox"] == [[-180, -90, 180, 90]]
    assert document["extent"]["temporal"]["interval"] == [["2015-06-27T10:25:31.456000Z", None]]
    assert document["summaries"]["platform"] == ["sentinel-2a", "sentinel-2b"]
    assert document["summaries"]["constellation"] == ["sentinel-2"]
    assert {p["name"] for p in document["providers"]} >= {"ESA", "Element 84"}
    # ...with the band names CDSE uses, mapped onto Earth Search's asset keys.
    names = [band["name"] for band in document["summaries"]["eo:bands"]]
    assert {"B04", "B08", "B11", "SCL"} <= set(names) and not {"red", "nir", "scl"} & set(names)
    assert document["cube:dimensions"]["bands"]["values"] == names
    b04 = next(band for band in document["summaries"]["eo:bands"] if band["name"] == "B04")
    assert b04["common_name"] == "red" and b04["center_wavelength"] == 0.665
    assert "item_assets" not in document and document["id"] == COLLECTION
    # Global archive, no single native CRS: the dimensions are in WGS84.
    assert document["cube:dimensions"]["x"]["reference_system"] == 4326


def test_stac_collection_metadata_is_cached(es_catalog, stac_api):
    es_catalog.stac_collection(COLLECTION)
    before = len(stac_api.requests)
    for _ in range(3):
        es_catalog.stac_collection(COLLECTION)
    assert len(stac_api.requests) == before


def test_stac_search_follows_next_links_to_the_last_page(es_catalog, stac_api):
    source = es_catalog.get(COLLECTION)
    source.ensure_loaded()
    stac_api.requests.clear()
    items = source.search(None, None, None)
    assert len(items) == 7  # every item, on pages of two
    pages = [r for r in stac_api.requests if r["path"] == "/search"]
    assert len(pages) == 4 and [p["parameters"].get("token") for p in pages] == [None, "2", "4", "6"]
    assert len({item.id for item in items}) == 7


def test_stac_search_with_get_follows_next_links_too(stac_api):
    from terracube.data.stac_api import open_api

    client = open_api(stac_api.url, Settings())
    stac_api.requests.clear()
    found = list(client.search(collections=["sentinel-2-l2a"], method="GET", limit=100).items())
    assert len(found) == 7 and len([r for r in stac_api.requests if r["method"] == "GET" and r["path"] == "/search"]) == 4


def test_stac_search_end_is_exclusive_and_bbox_narrows(es_catalog):
    source = es_catalog.get(COLLECTION)
    start, end = (pd.Timestamp(d, tz="UTC").to_pydatetime() for d in ("2021-07-21", "2021-07-26T10:36:29.511Z"))
    # The west tile of 2021-07-26 is sensed at exactly the end instant: [start, end) leaves it out.
    assert sorted(item.id for item in source.search(None, start, end)) == ["S2A_32UMB_20210726_0_L2A", "S2B_32ULB_20210721_0_L2A", "S2B_32UMB_20210721_0_L2A"]
    west_only = archive.wgs84(361_000, 5_599_000)
    box = (west_only[0] - 0.001, west_only[1] - 0.001, west_only[0] + 0.001, west_only[1] + 0.001)
    assert {item.properties["mgrs:grid_square"] for item in source.search(box, None, None)} == {"LB"}


def test_stac_cloud_cover_filter_is_sent_as_a_query_and_excludes_the_cloudy_scene(es_settings, stac_api, tmp_path):
    catalog = Catalog(es_settings)
    stac_api.requests.clear()
    execution = execute(load_graph(["2021-07-01", "2021-08-01"], properties={"eo:cloud_cover": cloud_cover_at_most(20)}),
                        request_env(es_settings, catalog, user_id=None), tmp_path / "out")
    [search, *_] = stac_api.searches
    assert search["query"] == {"eo:cloud_cover": {"lte": 20}} and search["collections"] == ["sentinel-2-l2a"]
    assert search["datetime"] == "2021-07-01T00:00:00Z/2021-08-01T00:00:00Z"
    import xarray as xr

    [(path, _)] = execution.files
    with xr.open_dataset(path) as result:
        assert [str(t)[:10] for t in result["t"].values] == ["2021-07-21"]  # 2021-07-26 (85 %) is out


def test_stac_properties_are_checked_item_by_item_too(stac_api, tmp_path):
    """An API without the query extension gets no query; the callback still excludes the cloudy scene."""
    with StacApiServer([archive.collection_document()], stac_api.items, conformance=[u for u in CONFORMANCE_FILTER_ONLY if "filter" not in u and "cql2" not in u]) as bare:
        settings = settings_for(tmp_path, bare.url)
        cube_days = _days(execute(load_graph(["2021-07-01", "2021-08-01"], properties={"eo:cloud_cover": cloud_cover_at_most(20)}),
                                  request_env(settings, Catalog(settings), user_id=None), tmp_path / "out"))
        assert all("query" not in s and "filter" not in s for s in bare.searches)
    assert cube_days == ["2021-07-21"]


def test_stac_cql2_filter_for_an_api_without_the_query_extension(stac_api, tmp_path):
    with StacApiServer([archive.collection_document()], stac_api.items, conformance=CONFORMANCE_FILTER_ONLY) as cdse_like:
        settings = settings_for(tmp_path, cdse_like.url)
        between = {"process_graph": {"b": {"process_id": "between", "arguments": {"x": {"from_parameter": "value"}, "min": 0, "max": 10}, "result": True}}}
        days = _days(execute(load_graph(["2021-01-01", "2023-01-01"], properties={"eo:cloud_cover": between}), request_env(settings, Catalog(settings), user_id=None), tmp_path / "out"))
        [search, *_] = cdse_like.searches
    assert search["filter"] == {"op": "and", "args": [{"op": ">=", "args": [{"property": "eo:cloud_cover"}, 0]},
                                                       {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]}]}
    assert search["filter-lang"] == "cql2-json" and "query" not in search
    assert days == ["2021-07-21", "2022-07-21", "2022-07-26"]


def _days(execution) -> list[str]:
    import xarray as xr

    [(path, _)] = execution.files
    with xr.open_dataset(path) as result:
        return [str(t)[:10] for t in result["t"].values]


@pytest.mark.parametrize("graph, expected", [
    ({"c": {"process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": 20}, "result": True}}, [("lte", 20)]),
    ({"c": {"process_id": "gt", "arguments": {"x": 20, "y": {"from_parameter": "value"}}, "result": True}}, [("lt", 20)]),
    ({"c": {"process_id": "between", "arguments": {"x": {"from_parameter": "value"}, "min": 1, "max": 5, "exclude_max": True}, "result": True}},
     [("gte", 1), ("lt", 5)]),
    ({"a": {"process_id": "gte", "arguments": {"x": {"from_parameter": "value"}, "y": 2}},
      "b": {"process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": 9}},
      "c": {"process_id": "and", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "b"}}, "result": True}}, [("gte", 2), ("lte", 9)]),
    ({"c": {"process_id": "array_contains", "arguments": {"data": ["sentinel-2a"], "value": {"from_parameter": "value"}}, "result": True}},
     [("in", ["sentinel-2a"])]),
    # Not translatable: sent as nothing (the callback alone decides).
    ({"a": {"process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": 9}},
      "b": {"process_id": "eq", "arguments": {"x": {"from_parameter": "value"}, "y": 50}},
      "c": {"process_id": "or", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "b"}}, "result": True}}, []),
    ({"c": {"process_id": "eq", "arguments": {"x": {"from_parameter": "value"}, "y": 5, "delta": 1}, "result": True}}, []),
])
def test_stac_property_callbacks_translate_to_search_conditions(graph, expected):
    found = conditions({"eo:cloud_cover": callback(graph)})
    assert [(c.op, c.value) for c in found] == expected


def test_stac_query_and_cql2_renderings():
    found = [Condition("eo:cloud_cover", "lte", 20), Condition("eo:cloud_cover", "lte", 10), Condition("platform", "in", ["sentinel-2a"])]
    assert stac_query(found) == {"eo:cloud_cover": {"lte": 10}, "platform": {"in": ["sentinel-2a"]}}
    assert cql2_filter(found[:1]) == {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]}
    assert cql2_filter([]) is None and stac_query([]) is None
