"""Parsing a process graph and pushing filters into load_collection."""

import pytest

from terracube.errors import ProcessGraphInvalid, ProcessGraphMissing
from terracube.graph.model import parse_process_graph
from terracube.graph.plan import push_down_filters

from tests.conftest import TUTORIAL_AOI


def graph_of(**nodes):
    return {"process_graph": nodes}


def load(**arguments):
    return {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", **arguments}}


def test_the_three_envelopes_clients_send_are_accepted():
    nodes = {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}
    for document in ({"process": {"process_graph": nodes}}, {"process_graph": nodes}, nodes):
        assert parse_process_graph(document).result_id == "a"


@pytest.mark.parametrize("document", [{}, None, {"process": {}}, {"process": {"process_graph": {}}}])
def test_no_graph_is_process_graph_missing(document):
    with pytest.raises(ProcessGraphMissing):
        parse_process_graph(document)


def test_structure_errors_name_the_node():
    with pytest.raises(ProcessGraphInvalid, match="exactly one"):
        parse_process_graph(graph_of(a={"process_id": "add", "arguments": {}}))
    with pytest.raises(ProcessGraphInvalid, match="'b'.*'zzz'"):
        parse_process_graph(graph_of(b={"process_id": "add", "arguments": {"x": {"from_node": "zzz"}}, "result": True}))
    with pytest.raises(ProcessGraphInvalid, match="cycle"):
        parse_process_graph(
            graph_of(
                a={"process_id": "add", "arguments": {"x": {"from_node": "b"}}},
                b={"process_id": "add", "arguments": {"x": {"from_node": "a"}}, "result": True},
            )
        )


def test_filters_after_load_collection_are_folded_into_the_load():
    graph = parse_process_graph(
        graph_of(
            load=load(),
            bbox={"process_id": "filter_bbox", "arguments": {"data": {"from_node": "load"}, "extent": TUTORIAL_AOI}},
            time={"process_id": "filter_temporal", "arguments": {"data": {"from_node": "bbox"}, "extent": ["2021-07-20", "2021-07-22"]}},
            bands={"process_id": "filter_bands", "arguments": {"data": {"from_node": "time"}, "bands": ["B04", "B08"]}},
            save={"process_id": "save_result", "arguments": {"data": {"from_node": "bands"}, "format": "GTiff"}, "result": True},
        )
    )
    planned = push_down_filters(graph).nodes["load"].arguments
    assert planned["spatial_extent"] == TUTORIAL_AOI
    assert planned["temporal_extent"] == ["2021-07-20", "2021-07-22"]
    assert planned["bands"] == ["B04", "B08"]


def test_extents_are_intersected_and_shared_loads_left_alone():
    graph = parse_process_graph(
        graph_of(
            load=load(temporal_extent=["2021-06-01", "2021-07-22"]),
            time={"process_id": "filter_temporal", "arguments": {"data": {"from_node": "load"}, "extent": ["2021-07-20", "2021-08-31"]}},
            other={"process_id": "save_result", "arguments": {"data": {"from_node": "time"}, "format": "GTiff"}, "result": True},
        )
    )
    assert push_down_filters(graph).nodes["load"].arguments["temporal_extent"] == ["2021-07-20", "2021-07-22"]

    shared = parse_process_graph(
        graph_of(
            load=load(),
            time={"process_id": "filter_temporal", "arguments": {"data": {"from_node": "load"}, "extent": ["2021-07-20", "2021-07-22"]}},
            both={"process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "load"}, "cube2": {"from_node": "time"}}, "result": True},
        )
    )
    assert "temporal_extent" not in push_down_filters(shared).nodes["load"].arguments
