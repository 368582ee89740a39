"""UDFs as CDSE users send them: the official client's ``openeo.UDF`` against a live server."""

from __future__ import annotations

import textwrap
import threading
import time

import numpy as np
import openeo
import pytest
import requests
import xarray as xr
from openeo.rest import OpenEoApiError

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer

SCALE = textwrap.dedent(
    """
    import xarray

    def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
        return cube * 0.0001
    """
)
CENTRED = textwrap.dedent(
    """
    import pandas as pd

    def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:
        return series - series.mean()
    """
)
FOREVER = "def apply_datacube(cube, context):\n    while True:\n        pass\n"
RAISES = "def apply_datacube(cube, context):\n    raise ValueError('no clouds allowed')\n"


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("udf"), TERRACUBE_UDF_TIMEOUT=8)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def con(server):
    return openeo.connect(server.url, default_timeout=300)


@pytest.fixture(scope="module")
def cube(con):
    return con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])


def download(cube, path) -> np.ndarray:
    cube.download(path, format="netCDF")
    with xr.open_dataset(path) as saved:
        return np.stack([saved["B04"].values, saved["B08"].values]).astype("float64")


@pytest.fixture(scope="module")
def plain(cube, tmp_path_factory) -> np.ndarray:
    return download(cube, tmp_path_factory.mktemp("plain") / "plain.nc")


def test_udf_runtimes_lists_python_with_its_libraries(con):
    runtimes = con.list_udf_runtimes()
    python = runtimes["Python"]
    assert python["default"] in python["versions"]
    assert {"numpy", "xarray", "pandas"} <= set(python["versions"][python["default"]]["libraries"])


def test_apply_with_a_udf_equals_numpy(cube, plain, tmp_path):
    result = download(cube.apply(openeo.UDF(SCALE)), tmp_path / "scaled.nc")
    np.testing.assert_allclose(result, plain * 0.0001, rtol=1e-6)


def test_apply_dimension_with_a_timeseries_udf_equals_numpy(con, tmp_path):
    # A python call per pixel is slow (as on CDSE): a corner of the AOI stays well inside the time limit.
    corner = {**TUTORIAL_AOI, "east": TUTORIAL_AOI["west"] + 0.01, "north": TUTORIAL_AOI["south"] + 0.006}
    small = con.load_collection("SENTINEL2_L2A", spatial_extent=corner, temporal_extent=["2021-07-01", "2021-07-31"], bands=["B04", "B08"])
    plain = download(small, tmp_path / "plain.nc")
    assert plain.shape[1] > 1  # several dates, so the series are real series
    result = download(small.apply_dimension(process=openeo.UDF(CENTRED), dimension="t"), tmp_path / "centred.nc")
    with np.errstate(invalid="ignore"):
        expected = plain - np.nanmean(plain, axis=1, keepdims=True)  # (bands, t, y, x): t is axis 1
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-3)


def test_a_udf_that_raises_is_a_4xx_with_its_message(cube, tmp_path):
    with pytest.raises(OpenEoApiError) as caught:
        cube.apply(openeo.UDF(RAISES)).download(tmp_path / "x.nc", format="netCDF")
    assert caught.value.http_status_code == 400 and caught.value.code == "UdfError"
    assert "ValueError: no clouds allowed" in caught.value.message and "line 2" in caught.value.message


def test_an_endless_udf_is_stopped_while_the_server_keeps_answering(server, cube, tmp_path):
    caught: list[Exception] = []

    def endless() -> None:
        try:
            cube.apply(openeo.UDF(FOREVER)).download(tmp_path / "never.nc", format="netCDF")
        except Exception as error:  # noqa: BLE001 - checked below
            caught.append(error)

    worker = threading.Thread(target=endless)
    started = time.monotonic()
    worker.start()
    time.sleep(1)
    assert requests.get(server.url + "/health", timeout=5).ok  # the server answers while the UDF loops
    assert requests.get(server.url + "/collections", timeout=5).ok
    worker.join(60)
    assert not worker.is_alive() and time.monotonic() - started < 60
    [error] = caught
    assert isinstance(error, OpenEoApiError) and error.http_status_code == 400
    assert "time limit of 8 s" in error.message
