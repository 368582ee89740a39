"""Size limits on what processes create: refused from the shape, before anything is computed.

The two cases measured against the old server (issue 16): the tutorial's read resampled to 0.1 m
(190 s and 4.5 GB) and ``array_create`` with ``repeat=1e8`` from a 150-byte request (2.6 GB).
Both go through ``POST /result`` in process, so the test can watch this process's memory.
"""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.errors import PayloadTooLarge, ProcessParameterInvalid
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings
from tests.conftest import AFTER, TUTORIAL_AOI, TUTORIAL_SHAPE


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("size-limits")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'jobs.db'}", results_root=str(folder / "results"))
    # A loopback Host, as laptop mode asks (api/guard.py).
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def resampled_tutorial(resolution: float) -> dict:
    return {
        "load": {
            "process_id": "load_collection",
            "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, "bands": ["B04", "B08"]},
        },
        "resample": {"process_id": "resample_spatial", "arguments": {"data": {"from_node": "load"}, "resolution": resolution}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "resample"}, "format": "netCDF"}, "result": True},
    }


ARRAY_CREATE = {"a": {"process_id": "array_create", "arguments": {"data": [1], "repeat": 100_000_000}, "result": True}}


def refused_quickly(client: TestClient, graph: dict, status: int, code: str) -> str:
    before = rss_bytes()
    started = time.perf_counter()
    response = client.post("/result", json={"process": {"process_graph": graph}})
    seconds = time.perf_counter() - started
    grown = rss_bytes() - before
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert seconds < 1.0, f"refused after {seconds:.1f} s"
    assert grown < 200 * 2**20, f"memory grew by {grown / 2**20:.0f} MB"
    return response.json()["message"]


def test_the_tutorial_read_resampled_to_a_decimetre_is_refused_at_once(client):
    # Warm up: the first load of a session opens the catalog and the archive's indexes.
    client.post("/result", json={"process": {"process_graph": resampled_tutorial(20)}})
    message = refused_quickly(client, resampled_tutorial(0.1), 413, "PayloadTooLarge")
    assert "batch job" in message and "resample_spatial" in message


def test_array_create_with_a_huge_repeat_is_refused_at_once(client):
    message = refused_quickly(client, ARRAY_CREATE, 400, "ProcessParameterInvalid")
    assert "100,000,000 elements" in message


def test_a_legitimate_resampling_still_runs(client, tmp_path):
    import xarray as xr

    response = client.post("/result", json={"process": {"process_graph": resampled_tutorial(20)}})
    assert response.status_code == 200, response.text
    path = tmp_path / "result.nc"
    path.write_bytes(response.content)
    with xr.open_dataset(path) as result:
        # The tutorial's 10 m grid at 20 m: half the rows and columns, rounded up.
        assert (result.sizes["y"], result.sizes["x"]) == tuple((n + 1) // 2 for n in TUTORIAL_SHAPE)


def test_a_moderate_array_create_still_answers(client):
    response = client.post("/result", json={"process": {"process_graph": {"a": {"process_id": "array_create", "arguments": {"data": [1, 2], "repeat": 3}, "result": True}}}})
    assert response.status_code == 200, response.text
    assert response.json() == [1, 2, 1, 2, 1, 2]


def run(graph: dict, env: ProcessEnv):
    return evaluate_process_graph(parse_process_graph({"process_graph": graph}), env=env)


def test_a_batch_job_is_bounded_too(settings, catalog):
    """Jobs have no synchronous limit, but the server's hard cap refuses absurd sizes with a 400."""
    job_env = ProcessEnv(catalog=catalog, settings=settings)  # max_values None: as a batch job runs
    with pytest.raises(ProcessParameterInvalid, match="this server allows"):
        run(resampled_tutorial(0.001), job_env)
    with pytest.raises(ProcessParameterInvalid, match="elements"):
        run(ARRAY_CREATE, job_env)
    # Within the cap a job may build what a synchronous request may not: the cube stays lazy.
    run(resampled_tutorial(0.1), job_env)
    assert job_env.saved_results[0].data.size > settings.sync_max_values


def test_every_node_is_checked_not_only_the_known_growers(settings):
    """A chain of array_concat doubles a list at each node: the evaluator refuses it on the node that crosses."""
    small = settings.model_copy(update={"max_array_length": 1000})
    graph = {"n0": {"process_id": "array_create", "arguments": {"data": [1], "repeat": 1}}}
    for i in range(1, 20):
        graph[f"n{i}"] = {"process_id": "array_concat", "arguments": {"array1": {"from_node": f"n{i-1}"}, "array2": {"from_node": f"n{i-1}"}}}
    graph["n19"]["result"] = True
    with pytest.raises(ProcessParameterInvalid, match="node 'n10'"):
        run(graph, ProcessEnv(settings=small))


def test_the_synchronous_limit_is_a_413_with_the_way_out(settings):
    env = ProcessEnv(settings=settings, max_values=10)
    with pytest.raises(PayloadTooLarge, match="batch job"):
        run({"a": {"process_id": "array_create", "arguments": {"data": [1, 2, 3], "repeat": 4}, "result": True}}, env)


def test_padding_from_user_numbers_is_refused_before_it_is_made(cube):
    """A huge 'overlap' or window 'size' would pad the cube (and make its labels) at once."""
    from terracube.processes.cubes_apply import apply_neighborhood
    from terracube.processes.cubes_reshape import aggregate_spatial_window

    env = ProcessEnv(settings=Settings())
    started = time.perf_counter()
    with pytest.raises(ProcessParameterInvalid, match="dimension 'x'"):
        apply_neighborhood(
            cube,
            lambda data, context=None: data,
            size=[{"dimension": "x", "value": 2, "unit": "px"}],
            overlap=[{"dimension": "x", "value": 10**9, "unit": "px"}],
            env=env,
        )
    with pytest.raises(ProcessParameterInvalid, match="dimension 'x'"):
        aggregate_spatial_window(cube, lambda data, context=None: data.mean(), size=[10**9, 1], env=env)
    assert time.perf_counter() - started < 1
    # Ordinary sizes (tests/processes/test_reshape.py has their values) pass the check.
    padded = aggregate_spatial_window(cube, lambda data, context=None: data.max(dim=data.dims[-1]), size=[2, 3], env=env)
    assert (padded.sizes["x"], padded.sizes["y"]) == (3, 2)  # 5 columns in windows of 2, 4 rows in windows of 3
