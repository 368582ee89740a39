"""Fixtures for the process tests: small labelled cubes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.processes.helpers import make_cube


@pytest.fixture
def cube() -> xr.DataArray:
    """3 dates x (B04, B08, SCL) x 4 x 5 pixels, float32, dask-backed, with a few NaN."""
    rng = np.random.default_rng(42)
    values = rng.uniform(0, 1, size=(3, 3, 4, 5)).astype("float32")
    values[0, :, 0, 0] = np.nan  # one pixel without data on the first date
    values[:, 1, 1, 1] = np.nan  # one pixel never has B08
    return make_cube(values, chunks={"t": 1, "y": 2, "x": 5})
