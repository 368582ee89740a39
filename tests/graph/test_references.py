"""openEO's reference values, recognised once (graph.model) and read alike by every module."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from terracube.graph.evaluate import Evaluator
from terracube.graph.fuse import PLAN_NAMESPACE, fuse_class_tests
from terracube.graph.model import Reference, contains_reference, iter_references, parse_process_graph, reference_of
from terracube.graph.udp import referenced_processes
from terracube.graph.validate import collect_errors
from terracube.jobs.assets import derived_from

from tests.conftest import AFTER, TUTORIAL_AOI


@pytest.mark.parametrize(
    "value, reference",
    [
        ({"from_node": "load"}, Reference("from_node", "load")),
        ({"from_parameter": "data"}, Reference("from_parameter", "data")),
        # The pre-1.0 spelling, as old graphs and the official test cases write it.
        ({"from_argument": "data"}, Reference("from_parameter", "data")),
        # Exactly one key: anything more is an ordinary object, as the evaluator passes it on.
        ({"from_node": "load", "note": "x"}, None),
        ({"process_graph": {}}, None),
        ("from_node", None),
        ([{"from_node": "load"}], None),
    ],
)
def test_a_reference_is_an_object_with_exactly_one_reference_key(value, reference):
    assert reference_of(value) == reference


def test_references_are_found_in_nested_values_but_not_inside_callbacks():
    callback = {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}
    value = {"a": [{"from_node": "n"}, 1], "b": {"from_argument": "p"}, "c": callback, "d": {"from_node": "n", "x": 1}}
    assert list(iter_references(value)) == [Reference("from_node", "n"), Reference("from_parameter", "p"), callback]
    assert contains_reference(callback) and not contains_reference({"west": 1, "crs": 4326, "bands": ["B04"]})


def test_a_parameter_out_of_scope_is_named_in_every_spelling():
    for key in ("from_parameter", "from_argument"):
        callback = {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {key: "nope"}}, "result": True}}}
        document = {"process_graph": {"r": {"process_id": "array_apply", "arguments": {"data": [1, 2], "process": callback}, "result": True}}}
        [error] = collect_errors(document)
        assert error.code == "ProcessParameterInvalid" and "'nope'" in error.message


def test_processes_used_in_callbacks_are_found_whatever_the_references_around_them():
    document = {
        "process_graph": {
            "r": {
                "process_id": "array_apply",
                "arguments": {
                    "data": {"from_argument": "x"},
                    "process": {"process_graph": {"s": {"process_id": "scaled", "namespace": "user", "arguments": {"x": {"from_parameter": "x"}}, "result": True}}},
                },
                "result": True,
            }
        }
    }
    assert list(referenced_processes(document)) == [("array_apply", None), ("scaled", "user")]


def _class_test(subjects):
    """``x == 3 or x == 8 or x == 9``, each test naming its subject with the given reference."""
    nodes = {f"is{v}": {"process_id": "eq", "arguments": {"x": s, "y": v}} for v, s in zip((3, 8, 9), subjects)}
    nodes["or8"] = {"process_id": "or", "arguments": {"x": {"from_node": "is3"}, "y": {"from_node": "is8"}}}
    nodes["or9"] = {"process_id": "or", "arguments": {"x": {"from_node": "or8"}, "y": {"from_node": "is9"}}, "result": True}
    return parse_process_graph({"process_graph": nodes})


@pytest.mark.parametrize(
    "subjects",
    [
        [{"from_argument": "x"}] * 3,
        [{"from_parameter": "x"}, {"from_argument": "x"}, {"from_parameter": "x"}],
    ],
    ids=["from_argument", "both spellings"],
)
def test_a_class_test_written_with_from_argument_is_fused_and_answers_the_same(subjects):
    graph = _class_test(subjects)
    fused = fuse_class_tests(graph)
    root = fused.result_node
    assert (root.namespace, root.process_id) == (PLAN_NAMESPACE, "is_one_of")
    assert sorted(root.arguments["values"]) == [3, 8, 9]
    x = np.array([3.0, 4.0, 9.0, np.nan])
    chained, planned = Evaluator().run(graph, {"x": x}), Evaluator().run(fused, {"x": x})
    np.testing.assert_array_equal(planned, chained)
    np.testing.assert_array_equal(planned, [1, 0, 1, np.nan])


def _loading(spatial_extent, temporal_extent=AFTER) -> dict:
    arguments = {"id": "SENTINEL2_L2A", "spatial_extent": spatial_extent, "temporal_extent": temporal_extent, "bands": ["B04"]}
    return {"process_graph": {"load": {"process_id": "load_collection", "arguments": arguments, "result": True}}}


CONSTANT = {"process_graph": {"c": {"process_id": "constant", "arguments": {"x": 7.0}, "result": True}}}


@pytest.mark.parametrize(
    "spatial_extent, temporal_extent",
    [
        ({"from_parameter": "aoi"}, AFTER),
        ({"from_argument": "aoi"}, AFTER),
        ({**TUTORIAL_AOI, "west": {"from_node": "edge"}}, AFTER),
        (TUTORIAL_AOI, [AFTER[0], {"from_parameter": "end"}]),
        # A callback is no literal either, even one that refers to nothing.
        ({**TUTORIAL_AOI, "west": CONSTANT}, AFTER),
    ],
    ids=["from_parameter", "from_argument", "from_node inside", "in the period", "callback"],
)
def test_sources_are_not_guessed_for_extents_that_are_not_literal(catalog, caplog, spatial_extent, temporal_extent):
    with caplog.at_level(logging.INFO, logger="terracube.jobs"):
        assert derived_from(_loading(spatial_extent, temporal_extent), catalog) == []
    # Left out up front, not searched with a reference standing in for a number.
    assert not [r for r in caplog.records if "could not repeat the search" in r.getMessage()]


def test_an_extent_the_evaluator_reads_as_literal_is_searched_again(catalog):
    # An object with more keys than one reference key is a literal in openEO: its numbers are read.
    [source] = derived_from(_loading({**TUTORIAL_AOI, "from_parameter": "unused"}), catalog)
    assert "20210721" in source["href"] and source == derived_from(_loading(TUTORIAL_AOI), catalog)[0]


@pytest.mark.parametrize("value", [{"from_node": ["a"]}, {"from_parameter": {"x": 1}}, {"from_argument": 3}])
def test_a_reference_that_names_no_string_is_an_invalid_graph(value):
    graph = {
        "a": {"process_id": "constant", "arguments": {"x": 1}},
        "b": {"process_id": "absolute", "arguments": {"x": value}, "result": True},
    }
    [error] = collect_errors({"process_graph": graph})
    assert error.code == "ProcessGraphInvalid" and error.status == 400
    assert "must name a string" in error.message
