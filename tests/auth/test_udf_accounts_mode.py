"""UDFs in accounts mode: confined by bubblewrap, or refused; synchronous requests and batch jobs alike.

Two live servers in accounts mode (an account made with ``terracube users add``), the official
client logged in: one with bubblewrap, where a UDF that looks for the server's database and data
directory finds nothing; one whose ``PATH`` has no ``bwrap`` (as on a machine without bubblewrap),
where ``run_udf`` is refused with a clear error, though the setting ``udf_sandbox`` is ``auto``
(laptop mode would run the UDF unconfined there: tests/processes/test_udf_confinement.py). The
cube comes from an uploaded GeoTIFF, so no sample archive is read.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import openeo
import pytest
from openeo.rest import OpenEoApiError

from terracube.processes import udf_runner
from tests.auth.conftest import PASSWORDS, terracube
from tests.auth.test_isolation import server_env, write_geotiff
from tests.live_server import LiveServer

# Reports what it could read of each path, by raising an error that carries the report.
LOOK = """
import json, os

def apply_datacube(cube, context):
    seen = {}
    for path in context["paths"]:
        try:
            seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, "rb").read(100).decode("latin-1")
        except OSError:
            seen[path] = None
    raise RuntimeError("REPORT" + json.dumps(seen))
"""


def report(message: str) -> dict:
    found = re.search(r"REPORT(.*) \(line \d+ of the UDF", message)
    assert found, message
    return json.loads(found.group(1))


def start(folder: Path, bubblewrap: bool) -> LiveServer:
    env = server_env(folder)
    if not bubblewrap:
        env["PATH"] = str(folder / "no-bwrap-here")  # the server's interpreter is started by its full path
    server = LiveServer(env)
    terracube(server.env, "users", "add", "alice", password=PASSWORDS["alice"])
    return server.start()


def alice_with_a_cube(server: LiveServer, folder: Path):
    alice = openeo.connect(server.url, default_timeout=300).authenticate_basic("alice", PASSWORDS["alice"])
    write_geotiff(folder / "upload.tif")
    alice.upload_file(folder / "upload.tif", target="scene.tif")
    return alice, alice.datacube_from_process("load_uploaded_files", paths=["scene.tif"], format="GTiff")


def finished_job(con, cube) -> tuple[str, list[dict]]:
    job = con.create_job(cube.save_result(format="netCDF"), title="a UDF")
    job.start()
    deadline = time.monotonic() + 180
    while (status := job.status()) not in ("finished", "error", "canceled"):
        assert time.monotonic() < deadline, f"the job is still {status}"
        time.sleep(0.3)
    return status, job.logs(level="error")


@pytest.fixture(scope="module")
def confined(tmp_path_factory):
    problem = udf_runner.bubblewrap_problem()
    if problem:
        pytest.skip(f"BUBBLEWRAP NOT USABLE: the confined accounts-mode test did NOT run: {problem}")
    folder = tmp_path_factory.mktemp("accounts-bwrap")
    server = start(folder, bubblewrap=True)
    yield server, folder
    server.stop()


@pytest.fixture(scope="module")
def without_bubblewrap(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounts-no-bwrap")
    server = start(folder, bubblewrap=False)
    yield server, folder
    server.stop()


def test_in_accounts_mode_a_udf_runs_confined(confined, tmp_path):
    server, folder = confined
    alice, cube = alice_with_a_cube(server, folder)
    paths = [str(folder / "terracube.db"), str(folder), str(folder / "files")]
    look = cube.apply(openeo.UDF(LOOK, context={"paths": paths}))
    with pytest.raises(OpenEoApiError) as caught:
        look.download(tmp_path / "x.nc", format="netCDF")
    assert (caught.value.http_status_code, caught.value.code) == (400, "UdfError")
    assert report(caught.value.message) == {path: None for path in paths}
    # A batch job, run by a Dask worker, is confined the same way.
    status, errors = finished_job(alice, look)
    assert status == "error"
    assert report(errors[-1]["message"]) == {path: None for path in paths}


def test_in_accounts_mode_without_bubblewrap_run_udf_is_refused(without_bubblewrap, tmp_path):
    server, folder = without_bubblewrap
    alice, cube = alice_with_a_cube(server, folder)
    look = cube.apply(openeo.UDF(LOOK, context={"paths": [str(folder / "terracube.db")]}))
    with pytest.raises(OpenEoApiError) as caught:
        look.download(tmp_path / "x.nc", format="netCDF")
    assert (caught.value.http_status_code, caught.value.code) == (501, "FeatureUnsupported")
    assert "runs with accounts" in caught.value.message and "apt-get install bubblewrap" in caught.value.message
    status, errors = finished_job(alice, look)
    assert status == "error"
    assert "runs with accounts" in errors[-1]["message"] and "REPORT" not in errors[-1]["message"]
    # The rest of the graph still runs: only user code is refused.
    cube.download(tmp_path / "plain.nc", format="netCDF")
    assert (tmp_path / "plain.nc").stat().st_size > 0
