"""Fixtures shared by every test package.

The simulated archive is built once per test session into a temporary data directory (set
``TERRACUBE_TEST_DATA_DIR`` to keep one between local runs); every test that needs data uses it.
Under pytest-xdist the workers share it: it lives in the run's common temporary folder, and the
build's own file lock lets one worker build while the others wait for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from terracube.settings import Settings

TUTORIAL_AOI = {
    "west": 7.055496548917159,
    "south": 50.52018836230043,
    "east": 7.117575039388905,
    "north": 50.546364682516895,
}
BEFORE = ["2021-06-12", "2021-06-14"]
AFTER = ["2021-07-20", "2021-07-22"]
# The grid CDSE answers the tutorial's "after" request on.
TUTORIAL_BOUNDS = (362150.0, 5598160.0, 366640.0, 5601190.0)
TUTORIAL_SHAPE = (303, 449)


def read_tutorial_ndvi(path):
    """Open a result the way a user checks it: the CDSE grid, float32 with nodata, NDVI in [-1, 1]."""
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32632
        assert (src.height, src.width) == TUTORIAL_SHAPE
        assert tuple(src.bounds) == TUTORIAL_BOUNDS
        assert src.res == (10.0, 10.0)
        assert src.dtypes[0] == "float32" and src.nodata is not None
        ndvi = src.read(1)
    assert np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
    return ndvi


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    from terracube.data.sample import ensure_sample_archive

    kept = os.environ.get("TERRACUBE_TEST_DATA_DIR")
    if kept:
        directory = Path(kept)
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        # Each worker's base temp is <run>/popen-gwN: their parent is this run's, shared by all workers.
        directory = tmp_path_factory.getbasetemp().parent / "terracube-data"
    else:
        directory = tmp_path_factory.mktemp("terracube-data")
    ensure_sample_archive(directory / "sample")
    return directory


@pytest.fixture(scope="session")
def settings(data_dir) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture(scope="session")
def catalog(settings):
    from terracube.data.catalog import Catalog

    return Catalog(settings)


# The slowest test files start first (measured 2026-11-29 on two cores; each takes 20-70 s).
# pytest-xdist hands out whole files (--dist loadfile) in collection order, and one slow file handed
# out last keeps its worker busy while the other three wait: most of a minute of the suite's time.
# A file not listed keeps its usual place, after these.
SLOW_FIRST = (
    "web/test_browser_layers.py", "web/test_browser_chart.py", "web/test_browser_timelapse.py", "web/test_browser_search.py",
    "processes/test_udf_confinement.py", "api/test_responsive.py", "auth/test_login_e2e.py", "web/test_browser_page.py",
    "api/test_process_graphs.py", "api/test_client_e2e.py", "auth/test_external_login.py", "api/test_udf_e2e.py",
    "jobs/test_tutorial_e2e.py", "auth/test_access.py", "auth/test_usage_quotas.py", "test_notebook.py",
    "web/test_browser_journey.py", "stac/test_stac_api_earth_search.py", "services/test_services_live.py", "jobs/test_restart.py",
)


def pytest_collection_modifyitems(items) -> None:
    rank = {path: place for place, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))  # stable
