"""The planner fuses `or` chains of `eq` tests into one membership test that answers the same."""

import numpy as np
import pytest
import xarray as xr

from terracube.flood.graph import _cloud_reducer
from terracube.graph.evaluate import Evaluator
from terracube.graph.fuse import PLAN_NAMESPACE, fuse_class_tests
from terracube.graph.model import parse_process_graph


def eq(name, subject, value):
    return {name: {"process_id": "eq", "arguments": {"x": subject, "y": value}}}


def or_(name, x, y, result=False):
    return {name: {"process_id": "or", "arguments": {"x": {"from_node": x}, "y": {"from_node": y}}, "result": result}}


X = {"from_parameter": "x"}


def chain_graph(values=(3, 8, 9, 10)):
    nodes = {}
    for value in values:
        nodes |= eq(f"is{value}", X, value)
    previous = f"is{values[0]}"
    for value in values[1:]:
        nodes |= or_(f"or{value}", previous, f"is{value}")
        previous = f"or{value}"
    nodes[previous]["result"] = True
    return parse_process_graph({"process_graph": nodes})


def both_ways(graph, x):
    """The chain evaluated node by node, and as the planner rewrites it."""
    return Evaluator().run(graph, {"x": x}), Evaluator().run(fuse_class_tests(graph), {"x": x})


def test_the_flood_tutorials_cloud_test_becomes_one_membership_test():
    graph = fuse_class_tests(parse_process_graph(_cloud_reducer()))
    root = graph.result_node
    assert (root.namespace, root.process_id) == (PLAN_NAMESPACE, "is_one_of")
    assert sorted(root.arguments["values"]) == [3, 8, 9, 10]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fused_cube_test_keeps_nodata_and_gives_what_the_chain_gives(dtype):
    values = np.array([[3, 4, np.nan], [10, 8, 0], [9, np.nan, 11]], dtype=dtype)
    cube = xr.DataArray(values, dims=("y", "x")).chunk({"y": 2})
    chained, fused = both_ways(chain_graph(), cube)
    assert fused.dtype == chained.dtype == np.float32
    np.testing.assert_array_equal(fused.values, chained.values)
    np.testing.assert_array_equal(fused.values, [[1, 0, np.nan], [1, 1, 0], [1, np.nan, 0]])


def test_an_integer_cube_answers_booleans_as_the_chain_does():
    cube = xr.DataArray(np.array([[3, 4], [10, 0]], dtype="uint8"), dims=("y", "x"))
    chained, fused = both_ways(chain_graph(), cube)
    assert fused.dtype == chained.dtype == bool
    np.testing.assert_array_equal(fused.values, [[True, False], [True, False]])


def test_plain_values_and_lists_follow_the_chains_null_rules():
    for x in (3, 4, None, [3, None, 5]):
        chained, fused = both_ways(chain_graph(), x)
        assert np.array_equal(np.asarray(fused, dtype=float), np.asarray(chained, dtype=float), equal_nan=True)


def test_a_test_used_elsewhere_or_on_another_subject_is_not_absorbed():
    nodes = eq("a", X, 1) | eq("b", X, 2) | or_("ab", "a", "b")
    nodes |= eq("c", {"from_parameter": "y"}, 3) | or_("abc", "ab", "c", result=True)
    graph = fuse_class_tests(parse_process_graph({"process_graph": nodes}))
    assert graph.nodes["ab"].process_id == "is_one_of"  # same subject: fused
    assert graph.nodes["abc"].process_id == "or"  # another subject: kept
    value = Evaluator().run(graph, {"x": np.array([1.0, 2.0, 5.0]), "y": np.array([0.0, 0.0, 3.0])})
    np.testing.assert_array_equal(value, [1, 1, 1])

    nodes = eq("a", X, 1) | eq("b", X, 2) | or_("ab", "a", "b")
    nodes |= {"uses_a": {"process_id": "and", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "ab"}}, "result": True}}
    graph = fuse_class_tests(parse_process_graph({"process_graph": nodes}))
    assert graph.nodes["ab"].process_id == "or"  # `a` is needed on its own too


def test_users_cannot_call_the_planners_processes():
    from terracube.errors import ProcessUnsupported
    from terracube.graph.validate import validate_process_graph

    document = {"process_graph": {"f": {"process_id": "is_one_of", "namespace": PLAN_NAMESPACE, "arguments": {"x": 1, "values": [1]}, "result": True}}}
    with pytest.raises(ProcessUnsupported):
        validate_process_graph(document)
