"""The tutorial's batch job cells, verbatim, with the official client against a live server."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import openeo
import pystac
import pytest
import rasterio
import requests
from pystac.extensions.projection import ProjectionExtension
from pystac.validation import validate_dict

from tests.conftest import AFTER, TUTORIAL_AOI, read_tutorial_ndvi
from tests.live_server import LiveServer
from tests.jobs.conftest import jobs_env
from tests.jobs.graphs import no_data


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("e2e"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def con(server):
    return openeo.connect(server.url, default_timeout=300)


def test_the_tutorial_job_cells(con, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    aoi = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
    after = ["2021-07-20", "2021-07-22"]

    def mean_ndvi(period):
        cube = con.load_collection("SENTINEL2_L2A", spatial_extent=aoi, temporal_extent=period, bands=["B04", "B08"])
        return cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean")

    # -- the notebook's cell, verbatim ---------------------------------------------------------
    job = mean_ndvi(after).save_result(format="GTiff").create_job(title="NDVI after the flood")
    job.start_and_wait()
    job.get_results().download_files("After")
    after_file = pathlib.Path("After") / "openEO.tif"
    # ------------------------------------------------------------------------------------------
    assert after_file.exists()
    batch = read_tutorial_ndvi(after_file)
    mean_ndvi(after).download("sync.tif")
    sync = read_tutorial_ndvi("sync.tif")
    with rasterio.open(after_file) as a, rasterio.open("sync.tif") as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
    assert np.array_equal(batch, sync, equal_nan=True)
    assert 0.65 < np.nanmean(batch) < 0.76
    # The results metadata that download_files stored beside the file is a STAC Item.
    [metadata] = [p for p in pathlib.Path("After").iterdir() if p.suffix == ".json"]
    document = json.loads(metadata.read_text())
    validate_dict(document, extensions=[])
    item = pystac.Item.from_dict(document)
    assert item.id == job.job_id and item.properties["title"] == "NDVI after the flood"
    assert ProjectionExtension.ext(item.assets["openEO.tif"]).epsg == 32632


def test_the_job_as_the_client_sees_it(con, server, tmp_path):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    job = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").create_job(title="listed", out_format="GTiff")
    assert job.status() == "created"
    assert job.job_id in [j["id"] for j in con.list_jobs()]
    job.start_and_wait(max_poll_interval=1)
    info = job.describe()
    assert info["status"] == "finished" and info["progress"] == 100 and "usage" in info
    logs = job.logs()
    assert logs and logs[-1]["message"] == "Job finished: openEO.tif." and all(entry["level"] != "error" for entry in logs)
    results = job.get_results()
    [asset] = results.get_assets()
    assert asset.key == "openEO.tif" and "signature=" in asset.href
    # No credentials with the signed URL, as any download manager would fetch it.
    head = requests.head(asset.href, timeout=30)
    assert head.ok and head.headers["Accept-Ranges"] == "bytes"
    path = results.download_file(tmp_path / "ndvi.tif")
    assert path.stat().st_size == int(head.headers["Content-Length"])
    job.delete()
    assert job.job_id not in [j["id"] for j in con.list_jobs()]
    assert requests.get(asset.href, timeout=30).status_code == 404


def test_a_failing_job_reports_its_error(con):
    job = con.create_job(no_data(), title="no data")
    with pytest.raises(openeo.rest.JobFailedException):
        job.start_and_wait(show_error_logs=False, max_poll_interval=1)
    assert job.status() == "error"
    [entry] = job.logs(level="error")
    assert entry["code"] == "NoDataAvailable" and "No scenes" in entry["message"]


def test_capabilities_list_the_job_endpoints(con):
    capabilities = con.capabilities()
    for path, method in (("/jobs", "POST"), ("/jobs", "GET"), ("/jobs/{job_id}", "PATCH"), ("/jobs/{job_id}/results", "POST"),
                         ("/jobs/{job_id}/results", "DELETE"), ("/jobs/{job_id}/logs", "GET"), ("/jobs/{job_id}/estimate", "GET")):
        assert capabilities.supports_endpoint(path, method=method), (path, method)


def test_a_job_result_feeds_the_next_graph_through_load_stac(con, tmp_path):
    """``load_stac_from_job``: the next graph reads the finished job's results by their signed URLs."""
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    job = cube.ndvi(nir="B08", red="B04").save_result(format="GTiff").create_job(title="NDVI series")
    job.start_and_wait(max_poll_interval=1)
    job.get_results().download_files(tmp_path / "first")
    again = con.load_stac_from_job(job).reduce_dimension(dimension="t", reducer="mean")
    again.download(tmp_path / "second.tif")
    with rasterio.open(tmp_path / "first" / "openEO.tif") as first, rasterio.open(tmp_path / "second.tif") as second:
        assert (second.crs, second.transform, second.shape) == (first.crs, first.transform, first.shape)
        np.testing.assert_allclose(second.read(1), first.read(1), equal_nan=True)
