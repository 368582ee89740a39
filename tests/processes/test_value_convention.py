"""The value convention: the same process on JSON values, numpy arrays and lazy DataArrays."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes import arrays, comparison, logic
from terracube.processes import math as m


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@pytest.fixture
def values():
    data = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], dtype="float32")
    return xr.DataArray(data, dims=("y", "bands"), coords={"bands": ["a", "b", "c"]}).chunk({"y": 1})


def test_scalars_in_python_scalars_out():
    results = [m.add(1, 2), m.divide(1, 0), m.divide(0, 0), m.multiply(np.float32(2), 3), m.sqrt(4), m.mean([1, None, 3])]
    assert results[0] == 3 and type(results[0]) is int
    assert results[1] == float("inf") and np.isnan(results[2])
    assert all(type(r) in (int, float) for r in results)
    assert m.add(None, 1) is None and m.linear_scale_range(None, 0, 1) is None
    json.dumps([r for r in results if r == r])  # JSON serialisable


def test_float32_cubes_stay_float32(values):
    for result in (m.add(values, 1.5), m.multiply(values, np.float64(2)), m.divide(values, 3), m.linear_scale_range(values, 0, 10, 0, 255), m.power(values, 2), m.clip(values, 0, 2)):
        assert result.dtype == np.float32
        assert hasattr(result.data, "dask")  # still lazy


def test_none_next_to_an_array_is_no_data(values):
    assert np.isnan(m.add(values, None).values).all()
    assert np.isnan(comparison.gt(values, None).values).all()


def test_reducers_use_the_last_dimension(values):
    mean = m.mean(values)
    assert mean.dims == ("y",) and mean.dtype == np.float32
    np.testing.assert_array_equal(mean.values, [2.0, np.nan])
    assert np.isnan(m.mean(values, ignore_nodata=False).values).all()
    np.testing.assert_array_equal(m.sum_(values).values, [4.0, np.nan])  # all no-data: no-data, not 0
    np.testing.assert_array_equal(arrays.count(values).values, [2, 0])
    np.testing.assert_array_equal(arrays.count(values, condition=True).values, [3, 3])
    np.testing.assert_array_equal(arrays.first(values).values, [1.0, np.nan])
    np.testing.assert_array_equal(arrays.last(values, ignore_nodata=False).values, [3.0, np.nan])


def test_lists_keep_nan_apart_from_null():
    assert m.mean([1, None, 3]) == 2
    assert np.isnan(m.mean([np.nan, 3]))
    assert m.mean([None, None]) is None and m.mean([]) is None
    assert m.sum_([1, None], ignore_nodata=False) is None
    assert arrays.count([1, None, np.nan, "a"]) == 2


def test_a_list_of_arrays_is_stacked_last(values):
    total = m.sum_([values, 1, None])
    assert total.dims == values.dims and total.dtype == np.float32
    np.testing.assert_array_equal(total.values[0], [2.0, 1.0, 4.0])


def test_array_element_on_arrays(values):
    assert arrays.array_element(values, label="c").dims == ("y",)
    np.testing.assert_array_equal(arrays.array_element(values, index=2).values, [3.0, np.nan])
    assert np.isnan(arrays.array_element(values, label="z", return_nodata=True).values).all()
    with pytest.raises(ProcessError) as error:
        arrays.array_element(values, index=3)
    assert error.value.code == "ArrayElementNotAvailable"
    with pytest.raises(ProcessError) as error:
        arrays.array_element(values.drop_vars("bands"), label="a")
    assert error.value.code == "ArrayNotLabeled"
    with pytest.raises(ProcessError) as error:
        arrays.array_element([1, 2], label="a")
    assert error.value.code == "ArrayNotLabeled"


def test_comparisons_and_logic_on_arrays_are_three_valued(values):
    greater = comparison.gt(values, 2)
    assert greater.dtype == np.float32
    np.testing.assert_array_equal(greater.values[0], [0.0, np.nan, 1.0])
    either = logic.or_(greater, comparison.lt(values, 2))
    np.testing.assert_array_equal(either.values[0], [1.0, np.nan, 1.0])
    both = logic.and_(greater, False)
    np.testing.assert_array_equal(both.values[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(logic.not_(greater).values[0], [1.0, np.nan, 0.0])
    chosen = logic.if_(greater, values, 0)
    np.testing.assert_array_equal(chosen.values[0], [0.0, 0.0, 3.0])  # no-data condition: reject
    assert comparison.is_nodata(values).dtype == bool and comparison.is_valid(values).values.sum() == 2


def test_boolean_arrays_stay_boolean():
    flags = np.array([True, False])
    assert logic.and_(flags, True).dtype == bool
    assert comparison.eq(np.array([1, 2]), 1).dtype == bool


def test_mod_and_int_edge_cases():
    assert m.mod(-27, 5) == 3 and m.mod(2, 0) == float("inf") and m.mod(2, -np.inf) == 2
    assert m.int_(-3.5) == -3 and m.int_(np.nan) is None
