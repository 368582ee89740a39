"""Picking bands out of a loaded cube (array_element, filter_bands, ndvi) costs no task of its own."""

import dask
import numpy as np
import pytest

from terracube.processes.arrays import select

from tests.processes.helpers import make_cube


def tasks(array) -> int:
    (optimized,) = dask.optimize(array)
    return len(optimized.__dask_graph__())


@pytest.mark.parametrize("key", [0, 2, slice(0, 2), slice(1, 3)])
@pytest.mark.parametrize("chunks", [None, {"t": 1, "bands": -1, "y": 2, "x": 3}, {"t": 1, "bands": 1, "y": 2, "x": 3}])
def test_select_answers_what_isel_answers(key, chunks):
    cube = make_cube(chunks=chunks)
    picked, expected = select(cube, "bands", key), cube.isel(bands=key, drop=True)
    assert picked.dims == expected.dims and picked.shape == expected.shape
    np.testing.assert_array_equal(picked.values, expected.values)
    for name, coord in expected.coords.items():
        np.testing.assert_array_equal(picked.coords[name].values, coord.values)
    assert picked.attrs == cube.attrs


def test_select_on_a_dimension_without_labels():
    # predict_curve's parameters dimension, arrays inside callbacks: a dimension without coordinates
    cube = make_cube(chunks={"t": 1, "bands": -1, "y": 2, "x": 3}).drop_vars("bands")
    np.testing.assert_array_equal(select(cube, "bands", 1).values, cube.isel(bands=1).values)
    assert select(cube, "bands", slice(1, 3)).sizes["bands"] == 2


def cloud_masked_ndvi(cube, pick):
    """The flood tutorial's pattern: SCL and the reflectances picked out of one chunk of bands."""
    clouds = pick(cube, 2) == 3
    reflectance = pick(cube, slice(0, 2)).where(~clouds)
    nir, red = pick(reflectance, 1), pick(reflectance, 0)
    return (nir - red) / (nir + red)


def test_bands_picked_out_of_one_chunk_fuse_into_the_operations_that_use_them():
    cube = make_cube(chunks={"t": 1, "bands": -1, "y": 2, "x": 3}) * 2
    fused = cloud_masked_ndvi(cube, lambda data, key: select(data, "bands", key))
    sliced = cloud_masked_ndvi(cube, lambda data, key: data.isel(bands=key, drop=True))
    assert tasks(fused.data) < tasks(sliced.data)  # slicing leaves a task per chunk and selection
    np.testing.assert_array_equal(fused.values, sliced.values)
