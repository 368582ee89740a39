"""A random forest as a CDSE user trains and applies it, with the official client on a live server:
train in a batch job (the client adds ``save_ml_model``), then predict from the job's signed
results URL in a synchronous request."""

from __future__ import annotations

import openeo
import pytest
import rasterio

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.processes.test_ml import BANDS, agreement, compute_scene, training_sites


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("ml-e2e"))).start()
    yield live
    live.stop()


def test_train_in_a_job_then_predict_with_the_saved_model(server, settings, catalog, tmp_path):
    sites, windows = training_sites(*compute_scene(settings, catalog))
    con = openeo.connect(server.url, default_timeout=300)
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=BANDS)
    cube = cube.reduce_dimension(dimension="t", reducer="mean")

    # No max_variables: the client leaves it out, as CDSE users' scripts do.
    model = cube.aggregate_spatial(geometries=sites, reducer="mean").fit_class_random_forest(target=sites, num_trees=50, seed=7)
    job = model.create_job(title="forest")
    job.start_and_wait(max_poll_interval=1)
    results = job.get_results()
    assets = {asset.name: asset for asset in results.get_assets()}
    assert set(assets) == {"model.json", "model.skops"}
    assert assets["model.skops"].metadata["roles"] == ["ml-model:checkpoint"]
    [canonical] = [link["href"] for link in results.get_metadata()["links"] if link["rel"] == "canonical"]

    cube.predict_random_forest(model=canonical, dimension="bands").download(tmp_path / "classes.tif")
    with rasterio.open(tmp_path / "classes.tif") as src:
        predicted = src.read(1)
    assert agreement(predicted, windows) > 0.9

    # Loading by job id needs the job store, which processes do not see: a clear 400, not a 500.
    with pytest.raises(openeo.rest.OpenEoApiError) as error:
        cube.predict_random_forest(model=job.job_id).download(tmp_path / "by-id.tif")
    assert error.value.http_status_code == 400 and "give the URL of the job's results" in error.value.message
