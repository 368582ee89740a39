"""flatten_dimensions, unflatten_dimension, reduce_spatial and aggregate_spatial_window on
labelled cubes: labels, dimension order, CRS, dtype, no-data, values against numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from terracube.cube import dimension_type
from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.cubes_reshape import aggregate_spatial_window, flatten_dimensions, reduce_spatial, unflatten_dimension

from tests.processes.helpers import callback, make_cube, single


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows, as intended
        yield


def test_flatten_joins_labels_row_major_as_the_spec_example():
    data = xr.DataArray(np.array([[1, 2], [3, 4]]), dims=("A", "B"), coords={"A": [2020, 2021], "B": ["B1", "B2"]}).chunk()
    result = flatten_dimensions(data, ["A", "B"], "X")
    assert result.dims == ("X",)
    assert list(result["X"].values) == ["2020~B1", "2020~B2", "2021~B1", "2021~B2"]
    assert result.values.tolist() == [1, 2, 3, 4]


def test_flatten_follows_the_order_of_dimensions_and_the_separator():
    data = xr.DataArray(np.array([[1, 2], [3, 4]]), dims=("A", "B"), coords={"A": ["a1", "a2"], "B": ["b1", "b2"]})
    result = flatten_dimensions(data, ["B", "A"], "X", label_separator="/")
    assert list(result["X"].values) == ["b1/a1", "b1/a2", "b2/a1", "b2/a2"]
    assert result.values.tolist() == [1, 3, 2, 4]


def test_flatten_keeps_the_other_dimensions_crs_and_dtype(cube):
    result = flatten_dimensions(cube, ["t", "bands"], "tb")
    assert result.dims == ("tb", "y", "x")
    assert result["tb"].values[1] == "2021-07-01T00:00:00Z~B08"
    assert result.odc.crs == cube.odc.crs
    assert result.dtype == cube.dtype
    assert dimension_type(result, "tb") == "other"
    assert result.chunks is not None
    np.testing.assert_array_equal(result.values, cube.values.reshape(9, 4, 5))


def test_flatten_errors(cube):
    with pytest.raises(ProcessError) as error:
        flatten_dimensions(cube, ["t", "time"], "tb")
    assert error.value.code == "DimensionNotAvailable"
    with pytest.raises(ProcessError) as error:
        flatten_dimensions(cube, ["t", "bands"], "x")
    assert error.value.code == "TargetDimensionExists"


def test_unflatten_reverses_flatten(cube):
    flat = flatten_dimensions(cube, ["bands", "x"], "bx")
    result = unflatten_dimension(flat, "bx", ["b", "c"])
    assert result.dims == ("t", "b", "c", "y")
    assert list(result["b"].values) == ["B04", "B08", "SCL"]
    assert list(result["c"].values) == list(cube["x"].values)
    assert dimension_type(result, "b") == "other"
    assert result.odc.crs == cube.odc.crs
    np.testing.assert_array_equal(result.values, cube.transpose("t", "bands", "x", "y").values)


def test_unflatten_the_spec_example():
    data = xr.DataArray([1, 2, 3, 4], dims=("X",), coords={"X": ["2020~B1", "2020~B2", "2021~B1", "2021~B2"]})
    result = unflatten_dimension(data, "X", ["A", "B"])
    assert result.dims == ("A", "B")
    assert list(result["A"].values) == [2020, 2021]
    assert list(result["B"].values) == ["B1", "B2"]
    assert result.values.tolist() == [[1, 2], [3, 4]]


def test_unflatten_rejects_labels_without_separator_or_grid():
    with pytest.raises(ProcessParameterInvalid, match="1 time"):
        unflatten_dimension(xr.DataArray([1, 2], dims=("X",), coords={"X": ["a~b", "c"]}), "X", ["A", "B"])
    with pytest.raises(ProcessParameterInvalid, match="complete grid"):
        unflatten_dimension(xr.DataArray([1, 2, 3], dims=("X",), coords={"X": ["a~b", "a~c", "d~b"]}), "X", ["A", "B"])
    with pytest.raises(ProcessError) as error:
        unflatten_dimension(xr.DataArray([1], dims=("X",), coords={"X": ["a~b"]}).expand_dims(A=[0]), "X", ["A", "B"])
    assert error.value.code == "TargetDimensionExists"


def test_reduce_spatial_reduces_x_and_y_together(cube):
    result = reduce_spatial(cube, single("mean"))
    assert result.dims == ("t", "bands")
    assert "x" not in result.coords and "y" not in result.coords
    assert list(result["bands"].values) == ["B04", "B08", "SCL"]
    assert result.dtype == cube.dtype
    np.testing.assert_allclose(result.values, np.nanmean(cube.values, axis=(2, 3)), rtol=1e-6)


def test_reduce_spatial_with_a_general_reducer(cube):
    reducer = callback({"m": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}, "ignore_nodata": False}}})
    result = reduce_spatial(cube, reducer)
    expected = cube.values.max(axis=(2, 3))
    np.testing.assert_array_equal(result.values, expected)  # NaN where a pixel has no data
    assert np.isnan(result.values[1, 1])


def test_window_sums_with_padding_and_centre_labels():
    cube = make_cube(shape=(4, 5), chunks={"x": 2})
    result = aggregate_spatial_window(cube, single("sum"), [2, 3])
    assert result.dims == ("t", "bands", "y", "x")
    assert result.shape == (3, 3, 2, 3)
    # window centres: x pairs of 10 m pixels, y triples (the last one padded below the image)
    np.testing.assert_allclose(result["x"].values, [362160.0, 362180.0, 362200.0])
    np.testing.assert_allclose(result["y"].values, [5601175.0, 5601145.0])
    assert result.odc.crs == cube.odc.crs
    image = np.pad(cube.values[0, 0], ((0, 2), (0, 1)), constant_values=np.nan)
    expected = np.nansum(image.reshape(2, 3, 3, 2), axis=(1, 3))
    np.testing.assert_array_equal(result.values[0, 0], expected)


def test_window_trim_aligned_lower_right_drops_the_upper_left_rest():
    cube = make_cube(shape=(4, 5))
    result = aggregate_spatial_window(cube, single("max"), [2, 3], boundary="trim", align="lower-right")
    assert result.shape == (3, 3, 1, 2)
    image = cube.values[0, 0][1:, 1:]  # the first row and column go
    np.testing.assert_array_equal(result.values[0, 0], image.reshape(1, 3, 2, 2).max(axis=(1, 3)))
    np.testing.assert_allclose(result["x"].values, cube["x"].values[1:].reshape(2, 2).mean(axis=1))


def test_window_padding_is_no_data_that_a_strict_mean_sees(cube):
    result = aggregate_spatial_window(cube, callback({"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}, "ignore_nodata": False}}}), [2, 2])
    assert result.shape == (3, 3, 2, 3)
    assert np.isnan(result.values[:, :, :, 2]).all()  # the last column window is half padding
    assert result.dtype.kind == "f"


def test_window_size_must_be_two_positive_numbers(cube):
    with pytest.raises(ProcessParameterInvalid, match="size"):
        aggregate_spatial_window(cube, single("mean"), [0, 2])
    with pytest.raises(ProcessParameterInvalid, match="boundary"):
        aggregate_spatial_window(cube, single("mean"), [2, 2], boundary="cut")
