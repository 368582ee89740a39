"""Process calls per request are counted: stored processes calling each other can't multiply work without end.

``double_i(x)`` adds ``double_{i-1}(x)`` to itself, so calling ``double_30`` would evaluate 2^31
process nodes; ``double_0(x)`` is ``x + 1``. Saved through the API (``PUT /process_graphs``) and
called with ``POST /result``, as a user would.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.errors import ProcessGraphComplexity
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

X = [{"name": "x", "description": "A number", "schema": {"type": "number"}}]


def double(i: int) -> dict:
    if i == 0:
        graph = {"add": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}}
    else:
        inner = {"process_id": f"double_{i - 1}", "namespace": "user", "arguments": {"x": {"from_parameter": "x"}}}
        graph = {
            "a": inner,
            "b": dict(inner),
            "sum": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "b"}}, "result": True},
        }
    return {"id": f"double_{i}", "parameters": X, "process_graph": graph}


def call(i: int, x: float) -> dict:
    return {"process": {"process_graph": {"c": {"process_id": f"double_{i}", "namespace": "user", "arguments": {"x": x}, "result": True}}}}


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluation-limit")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'jobs.db'}", results_root=str(folder / "results"))
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        for i in range(31):
            response = test_client.put(f"/process_graphs/double_{i}", json=double(i))
            assert response.status_code == 200, response.text
        yield test_client


def test_a_chain_of_five_gives_the_right_value(client):
    response = client.post("/result", json=call(5, 1))
    assert response.status_code == 200, response.text
    assert response.json() == 2**5 * (1 + 1)


def test_thirty_doublings_are_refused_quickly(client):
    started = time.perf_counter()
    response = client.post("/result", json=call(30, 1))
    seconds = time.perf_counter() - started
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "ProcessGraphComplexity"
    assert "100,000 process calls" in response.json()["message"]
    # 100,000 cheap calls (a second or two on an idle core), not 2^31 (hours): generous for a busy machine.
    assert seconds < 30, f"refused after {seconds:.1f} s"


def test_validation_does_not_expand_stored_processes(client):
    """Validating a call checks its arguments against the stored process's parameters: no recursion."""
    started = time.perf_counter()
    response = client.post("/validation", json=call(30, 1))
    assert response.status_code == 200 and response.json()["errors"] == []
    assert time.perf_counter() - started < 1


def nested_array_apply(depth: int, data: list) -> dict:
    """``array_apply`` in ``array_apply`` ... ``depth`` deep over ``data``: len(data)^depth innermost calls."""
    graph = {"add": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}}
    for _ in range(depth):
        graph = {"apply": {"process_id": "array_apply", "arguments": {"data": data, "process": {"process_graph": graph}}, "result": True}}
    return graph


def test_nested_array_apply_fifty_deep_is_bounded(settings):
    started = time.perf_counter()
    with pytest.raises(ProcessGraphComplexity):
        evaluate_process_graph(parse_process_graph({"process_graph": nested_array_apply(50, [1, 2])}), env=ProcessEnv(settings=settings))
    assert time.perf_counter() - started < 30  # 2^50 calls without the limit
    # A few levels are fine, and right: each level's array holds the level below's.
    assert evaluate_process_graph(parse_process_graph({"process_graph": nested_array_apply(3, [1, 2])}), env=ProcessEnv(settings=settings)) == [[[2, 3]] * 2] * 2


def test_the_limit_is_a_setting(settings):
    graph = parse_process_graph({"process_graph": nested_array_apply(3, [1, 2])})  # 1 + 2 + 4 array_apply, 8 add: 15 calls
    with pytest.raises(ProcessGraphComplexity, match="more than 14 process calls"):
        evaluate_process_graph(graph, env=ProcessEnv(settings=settings.model_copy(update={"max_evaluations": 14})))
    assert evaluate_process_graph(graph, env=ProcessEnv(settings=settings.model_copy(update={"max_evaluations": 15})))
