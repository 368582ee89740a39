"""Calling user-defined processes: arguments as parameters, defaults, validation of the call."""

from __future__ import annotations

import pytest

from terracube.errors import ProcessGraphInvalid
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.graph.udp import lookup_in
from terracube.graph.validate import collect_errors

# scaled(x, factor=10) = x * factor, through a callback that sees the process's own parameter.
SCALED = {
    "id": "scaled",
    "parameters": [{"name": "x", "schema": {"type": "array"}}, {"name": "factor", "schema": {"type": "number"}, "default": 10, "optional": True}],
    "process_graph": {
        "a": {
            "process_id": "array_apply",
            "arguments": {
                "data": {"from_parameter": "x"},
                "process": {"process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "factor"}}, "result": True}}},
            },
            "result": True,
        }
    },
}
LOOP = {"id": "loop", "parameters": [], "process_graph": {"l": {"process_id": "loop", "namespace": "user", "arguments": {}, "result": True}}}
UDPS = lookup_in({"scaled": SCALED, "loop": LOOP})


def call(arguments: dict, namespace="user") -> dict:
    return {"process_graph": {"s": {"process_id": "scaled", "namespace": namespace, "arguments": arguments, "result": True}}}


def test_arguments_become_parameters_and_defaults_fill_in():
    assert evaluate_process_graph(parse_process_graph(call({"x": [1, 2], "factor": 2})), udps=UDPS) == [2, 4]
    assert evaluate_process_graph(parse_process_graph(call({"x": [1, 2]}, namespace=None)), udps=UDPS) == [10, 20]


def test_validation_knows_stored_processes_and_checks_the_call():
    assert collect_errors(call({"x": [1]}), udps=UDPS) == []
    [unknown] = collect_errors(call({"x": [1]}), udps=None)
    assert unknown.code == "ProcessUnsupported" and "'scaled' in namespace 'user'" in unknown.message
    [missing] = collect_errors(call({"factor": 2}), udps=UDPS)
    assert missing.code == "ProcessParameterRequired" and "'x'" in missing.message
    [extra] = collect_errors(call({"x": [1], "y": 2}), udps=UDPS)
    assert extra.code == "ProcessParameterUnsupported" and "x, factor" in extra.message
    [wrong] = collect_errors(call({"x": "text"}), udps=UDPS)
    assert wrong.code == "ProcessParameterInvalid"
    # Another namespace is not the user's.
    assert collect_errors(call({"x": [1]}, namespace="https://example.org/processes"), udps=UDPS)[0].code == "ProcessUnsupported"


def test_a_process_calling_itself_is_an_error_not_a_hang():
    graph = {"process_graph": {"l": {"process_id": "loop", "namespace": "user", "arguments": {}, "result": True}}}
    with pytest.raises(ProcessGraphInvalid, match="calls itself"):
        evaluate_process_graph(parse_process_graph(graph), udps=UDPS)
