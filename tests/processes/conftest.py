"""Fixtures for the process tests: small labelled cubes, and the official-case tally."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.processes.helpers import make_cube

_TALLY: dict[str, list[int]] = {}


@pytest.fixture(scope="session")
def official_results() -> dict[str, list[int]]:
    """process id -> [passed, run] for the official cases, printed at the end of the session."""
    return _TALLY


def pytest_terminal_summary(terminalreporter):
    if not _TALLY:
        return
    terminalreporter.section("official openEO test cases: passed / run per process")
    line = []
    for process_id in sorted(_TALLY):
        passed, run = _TALLY[process_id]
        line.append(f"{process_id} {passed}/{run}")
    total = sum(p for p, _ in _TALLY.values()), sum(r for _, r in _TALLY.values())
    terminalreporter.write_line(", ".join(line))
    terminalreporter.write_line(f"total {total[0]}/{total[1]} (the rest are the documented strict xfails/skips)")


@pytest.fixture
def cube() -> xr.DataArray:
    """3 dates x (B04, B08, SCL) x 4 x 5 pixels, float32, dask-backed, with a few NaN."""
    rng = np.random.default_rng(42)
    values = rng.uniform(0, 1, size=(3, 3, 4, 5)).astype("float32")
    values[0, :, 0, 0] = np.nan  # one pixel without data on the first date
    values[:, 1, 1, 1] = np.nan  # one pixel never has B08
    return make_cube(values, chunks={"t": 1, "y": 2, "x": 5})
