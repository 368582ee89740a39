"""reduce_dimension and apply on labelled cubes: labels, dimension order, CRS, dtype, no-data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.graph.evaluate import Evaluator
from terracube.processes.cubes import apply, reduce_dimension
from terracube.processes.implementations import IMPLEMENTATIONS

from tests.processes.helpers import callback, single

REDUCERS = ["mean", "median", "min", "max", "sum", "count", "sd", "variance", "product"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels, as intended
        yield


def general_path(process_id: str, **arguments):
    """The same reducer as a plain callable: reduce_dimension can't take its fast path."""
    function = IMPLEMENTATIONS[process_id]
    return lambda data, context=None: function(data=data, **arguments)


def assert_cube_like(result: xr.DataArray, source: xr.DataArray, dropped: str) -> None:
    assert result.dims == tuple(d for d in source.dims if d != dropped)
    for dim in result.dims:
        assert result.indexes[dim].equals(source.indexes[dim])
    assert result.odc.crs.epsg == 32632
    assert dropped not in result.coords


@pytest.mark.parametrize("process_id", REDUCERS)
@pytest.mark.parametrize("dimension", ["t", "bands"])
def test_fast_and_general_paths_agree(cube, process_id, dimension):
    fast = reduce_dimension(cube, single(process_id), dimension)
    general = reduce_dimension(cube, general_path(process_id), dimension)
    assert_cube_like(fast, cube, dimension)
    assert_cube_like(general, cube, dimension)
    assert fast.dtype == general.dtype
    if process_id != "count":
        assert fast.dtype == np.float32
    xr.testing.assert_identical(fast.compute(), general.compute())


def test_the_fast_path_does_not_evaluate_the_callback(cube, monkeypatch):
    calls = []
    original = Evaluator.run
    monkeypatch.setattr(Evaluator, "run", lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
    reduce_dimension(cube, single("mean", ignore_nodata=False), "t")
    assert calls == []
    reduce_dimension(cube, single("mean", ignore_nodata={"from_parameter": "context"}), "t", context=False)
    assert len(calls) == 1  # an argument that is not a literal: the general path


def test_no_data_is_ignored_or_not_as_asked(cube):
    mean = reduce_dimension(cube, single("mean"), "t").compute()
    strict = reduce_dimension(cube, single("mean", ignore_nodata=False), "t").compute()
    expected = np.nanmean(cube.values[1:, :, 0, 0], axis=0)
    np.testing.assert_allclose(mean.values[:, 0, 0], expected, rtol=1e-6)
    assert np.isnan(strict.values[:, 0, 0]).all()
    # A pixel without any value stays no-data, also for sum (not 0) and count (0 valid values).
    assert np.isnan(mean.sel(bands="B08").values[1, 1])
    assert np.isnan(reduce_dimension(cube, single("sum"), "t").sel(bands="B08").values[1, 1])
    assert reduce_dimension(cube, single("count"), "t").sel(bands="B08").values[1, 1] == 0


def test_attrs_and_dimension_types_survive(cube):
    cube.attrs = {"nodata": np.nan, "dimension_types": {"t": "temporal", "bands": "bands", "y": "spatial", "x": "spatial"}}
    result = reduce_dimension(cube, single("max"), "t")
    assert result.attrs["dimension_types"] == {"bands": "bands", "y": "spatial", "x": "spatial"}
    assert np.isnan(result.attrs["nodata"])
    assert cube.attrs["dimension_types"]["t"] == "temporal"  # the input is untouched


def test_a_band_math_reducer_gets_the_bands_last_and_by_label(cube):
    reducer = callback(
        {
            "nir": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B08"}},
            "red": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "index": 0}},
            "nd": {"process_id": "normalized_difference", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
        }
    )
    result = reduce_dimension(cube, reducer, "bands")
    assert_cube_like(result, cube, "bands")
    assert result.dtype == np.float32
    nir, red = cube.sel(bands="B08").values, cube.sel(bands="B04").values
    np.testing.assert_allclose(result.values, (nir - red) / (nir + red), rtol=1e-6)


def test_context_reaches_the_reducer(cube):
    reducer = callback(
        {
            "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
            "times": {"process_id": "multiply", "arguments": {"x": {"from_node": "m"}, "y": {"from_parameter": "context"}}},
        }
    )
    result = reduce_dimension(cube, reducer, "t", context=10)
    xr.testing.assert_allclose(result, reduce_dimension(cube, single("mean"), "t") * 10)


def test_a_constant_reducer_fills_the_reduced_cube(cube):
    result = reduce_dimension(cube, lambda data, context=None: 3, "t")
    assert_cube_like(result, cube, "t")
    assert result.dtype == np.float32 and (result.values == 3).all()


def test_missing_dimension_and_non_reducing_reducer(cube):
    with pytest.raises(ProcessError) as error:
        reduce_dimension(cube, single("mean"), "time")
    assert error.value.code == "DimensionNotAvailable"
    with pytest.raises(ProcessParameterInvalid, match="single value"):
        reduce_dimension(cube, lambda data, context=None: data, "t")


def test_apply_is_element_wise_and_keeps_the_cube(cube):
    cube.attrs = {"nodata": np.nan}
    process = callback(
        {"scale": {"process_id": "linear_scale_range", "arguments": {"x": {"from_parameter": "x"}, "inputMin": 0, "inputMax": 1, "outputMax": 255}}}
    )
    result = apply(cube, process)
    assert result.dims == cube.dims and result.dtype == np.float32
    assert result.odc.crs.epsg == 32632 and "nodata" in result.attrs
    for dim in cube.dims:
        assert result.indexes[dim].equals(cube.indexes[dim])
    np.testing.assert_allclose(result.values, cube.values * 255, rtol=1e-5)
    assert np.isnan(result.values[0, 0, 0, 0])


def test_apply_with_context_and_a_comparison(cube):
    process = callback({"gt": {"process_id": "gt", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}}}})
    result = apply(cube, process, context=0.5).compute()
    assert result.dtype == np.float32  # true/false with no-data where the input is no-data
    assert set(np.unique(result.values[np.isfinite(result.values)])) <= {0.0, 1.0}
    assert np.isnan(result.values[0, 0, 0, 0])
    np.testing.assert_array_equal(result.values[1:, 0] == 1, cube.values[1:, 0] > 0.5)


def test_apply_with_a_constant_callback(cube):
    result = apply(cube, lambda x, context=None: None)
    assert result.dims == cube.dims and np.isnan(result.values).all()
