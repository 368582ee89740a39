"""ndvi, mask, merge_cubes and rename_labels on labelled cubes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes.cubes import ndvi, rename_labels
from terracube.processes.cubes_combine import mask, merge_cubes

from tests.processes.helpers import callback, make_cube


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def expected_ndvi(cube, nir="B08", red="B04"):
    n, r = cube.sel(bands=nir).values.astype("float32"), cube.sel(bands=red).values.astype("float32")
    return (n - r) / (n + r)


# --- ndvi -----------------------------------------------------------------------------------


def test_ndvi_by_band_names_drops_the_bands(cube):
    result = ndvi(cube, nir="B08", red="B04")
    assert result.dims == ("t", "y", "x") and result.dtype == np.float32
    assert result.odc.crs.epsg == 32632 and "bands" not in result.coords
    np.testing.assert_allclose(result.values, expected_ndvi(cube), rtol=1e-6)
    assert np.isnan(result.values[:, 1, 1]).all()  # no B08 there: no-data


def test_ndvi_by_common_names(cube):
    by_coord = cube.assign_coords(common_name=("bands", ["red", "nir", ""]))
    np.testing.assert_allclose(ndvi(by_coord).values, expected_ndvi(cube), rtol=1e-6)
    by_attrs = cube.copy()
    by_attrs.attrs["common_names"] = {"red": "B04", "nir": "B08"}
    np.testing.assert_allclose(ndvi(by_attrs).values, expected_ndvi(cube), rtol=1e-6)


def test_ndvi_without_common_names_names_the_bands(cube):
    with pytest.raises(ProcessError) as error:
        ndvi(cube)
    assert error.value.code == "NirBandAmbiguous" and "B04, B08, SCL" in error.value.message
    with pytest.raises(ProcessError) as error:
        ndvi(cube, nir="B08")
    assert error.value.code == "RedBandAmbiguous"
    with pytest.raises(ProcessError) as error:
        ndvi(cube.isel(bands=0, drop=True), nir="B08", red="B04")
    assert error.value.code == "DimensionAmbiguous"


def test_ndvi_with_a_target_band_appends_it(cube):
    cube = cube.assign_coords(common_name=("bands", ["red", "nir", ""]))
    result = ndvi(cube, target_band="NDVI")
    assert result.dims == cube.dims and list(result.bands.values) == ["B04", "B08", "SCL", "NDVI"]
    assert list(result.common_name.values) == ["red", "nir", "", ""]
    assert result.dtype == np.float32 and result.odc.crs.epsg == 32632
    np.testing.assert_allclose(result.sel(bands="NDVI").values, expected_ndvi(cube), rtol=1e-6)
    np.testing.assert_array_equal(result.sel(bands="B04").values, cube.sel(bands="B04").values)
    with pytest.raises(ProcessError) as error:
        ndvi(cube, target_band="B04")
    assert error.value.code == "BandExists"


@pytest.mark.parametrize("dtype", ["uint16", "int32"])
def test_ndvi_of_integers_is_float32_without_wrapping_around(dtype):
    cube = make_cube(np.array([[[[100]], [[3000]]]]), times=("2021-07-21",), bands=("B04", "B08"), shape=(1, 1), dtype=dtype)
    result = ndvi(cube, nir="B04", red="B08")  # 100 - 3000 would wrap around in uint16
    assert result.dtype == np.float32
    assert result.values.item() == pytest.approx((100 - 3000) / 3100)


# --- mask -----------------------------------------------------------------------------------


def test_mask_without_bands_applies_to_every_band(cube):
    clouds = cube.sel(bands="SCL", drop=True) > 0.5  # float32 1/0/NaN, dims t, y, x
    result = mask(cube, clouds)
    assert result.dims == cube.dims and result.dtype == np.float32 and result.odc.crs.epsg == 32632
    values, scl = cube.values, cube.sel(bands="SCL").values
    for band in range(3):
        expected = np.where(scl > 0.5, np.nan, values[:, band])
        np.testing.assert_array_equal(result.values[:, band], expected)


def test_mask_replacement_booleans_and_no_data_in_the_mask(cube):
    flags = xr.zeros_like(cube.isel(t=0, bands=0, drop=True), dtype=bool)
    flags[0, 1] = True
    replaced = mask(cube, flags, replacement=-1).compute()
    assert (replaced.values[:, :, 0, 1] == -1).all() and replaced.dtype == np.float32
    assert (replaced.values[:, :, 2:] == cube.values[:, :, 2:]).all()
    numeric = flags.astype("float32").where(flags.x != flags.x[0])  # NaN in the first column
    result = mask(cube, numeric).compute()
    np.testing.assert_array_equal(np.isnan(result.values[1:, :, 1:, 0]), False)  # no-data in the mask masks nothing


def test_mask_on_a_coarser_grid_is_matched_by_nearest_neighbour():
    data = make_cube(None, times=("2021-07-21",), bands=("B04",), shape=(4, 4))
    coarse = make_cube(np.array([1, 0, 0, 0], dtype="float32"), times=("2021-07-21",), bands=("SCL",), shape=(2, 2), resolution=20)
    result = mask(data, coarse.isel(bands=0, drop=True))
    assert np.isnan(result.values[0, 0, :2, :2]).all() and not np.isnan(result.values[0, 0, 2:, :]).any()


def test_a_single_band_mask_applies_to_every_band(cube):
    clouds = cube.sel(bands=["SCL"]) > 0.5
    expected = mask(cube, clouds.isel(bands=0, drop=True))
    xr.testing.assert_identical(mask(cube, clouds).compute(), expected.compute())


def test_mask_with_other_labels_is_incompatible(cube):
    other = cube.sel(bands="SCL", drop=True).assign_coords(t=cube.t.values + np.timedelta64(1, "D"))
    with pytest.raises(ProcessError) as error:
        mask(cube, other)
    assert error.value.code == "IncompatibleDataCubes" and "'t'" in error.value.message


# --- merge_cubes ----------------------------------------------------------------------------


def test_merge_disjoint_bands_concatenates(cube):
    first, second = cube.sel(bands=["B04", "B08"]), cube.sel(bands=["SCL"])
    result = merge_cubes(second, first)
    assert list(result.bands.values) == ["SCL", "B04", "B08"]  # cube2's labels after cube1's
    assert result.dims == cube.dims and result.dtype == np.float32 and result.odc.crs.epsg == 32632
    xr.testing.assert_identical(result.sel(bands=cube.bands.values).compute().drop_attrs(), cube.compute().drop_attrs())


def test_merge_disjoint_dates_keeps_time_sorted(cube):
    result = merge_cubes(cube.isel(t=[2]), cube.isel(t=[0, 1]))
    assert list(result.t.values) == list(cube.t.values)
    np.testing.assert_array_equal(result.values, cube.values)


def test_overlap_needs_a_resolver(cube):
    with pytest.raises(ProcessError) as error:
        merge_cubes(cube.sel(bands=["B04", "B08"]), cube.sel(bands=["B08", "SCL"]))
    assert error.value.code == "OverlapResolverMissing" and "B08" in error.value.message


def test_overlap_resolver_combines_only_the_overlap(cube):
    resolver = callback({"sum": {"process_id": "sum", "arguments": {"data": [{"from_parameter": "x"}, {"from_parameter": "y"}]}}})
    result = merge_cubes(cube.sel(bands=["B04", "B08"]), cube.sel(bands=["B08", "SCL"]), resolver)
    assert list(result.bands.values) == ["B04", "B08", "SCL"] and result.dims == cube.dims
    assert result.dtype == np.float32 and result.odc.crs.epsg == 32632
    np.testing.assert_array_equal(result.sel(bands="B04").values, cube.sel(bands="B04").values)
    np.testing.assert_array_equal(result.sel(bands="SCL").values, cube.sel(bands="SCL").values)
    b08 = cube.sel(bands="B08").values
    np.testing.assert_allclose(result.sel(bands="B08").values, b08 * 2, rtol=1e-6)  # NaN where B08 is missing


def test_merge_a_cube_without_time_into_every_date(cube):
    dem = cube.isel(t=0, drop=True).sel(bands=["B04"])
    resolver = callback({"add": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "y"}}}})
    result = merge_cubes(cube.sel(bands=["B04"]), dem, resolver)
    assert result.dims == cube.dims and result.odc.crs.epsg == 32632
    np.testing.assert_allclose(result.values, cube.sel(bands=["B04"]).values + dem.values[None], rtol=1e-6)
    with pytest.raises(ProcessError) as error:
        merge_cubes(cube, dem)
    assert error.value.code == "OverlapResolverMissing"


# --- rename_labels --------------------------------------------------------------------------


def test_rename_labels(cube):
    result = rename_labels(cube, "bands", ["red", "nir"], ["B04", "B08"])
    assert list(result.bands.values) == ["red", "nir", "SCL"]
    assert result.dims == cube.dims and result.odc.crs.epsg == 32632
    np.testing.assert_array_equal(result.values, cube.values)
    swapped = rename_labels(cube, "bands", ["B08", "B04"], ["B04", "B08"])
    assert list(swapped.bands.values) == ["B08", "B04", "SCL"]


def test_rename_enumerated_labels(cube):
    enumerated = cube.assign_coords(bands=[0, 1, 2])
    assert list(rename_labels(enumerated, "bands", ["a", "b"]).bands.values) == ["a", "b", 2]


@pytest.mark.parametrize(
    "dimension, target, source, code",
    [
        ("band", ["a"], ["B04"], "DimensionNotAvailable"),
        ("bands", ["a", "b"], ["B04"], "LabelMismatch"),
        ("bands", ["a"], ["B05"], "LabelNotAvailable"),
        ("bands", ["SCL"], ["B04"], "LabelExists"),
        ("bands", ["a"], [], "LabelsNotEnumerated"),
    ],
)
def test_rename_labels_errors(cube, dimension, target, source, code):
    with pytest.raises(ProcessError) as error:
        rename_labels(cube, dimension, target, source)
    assert error.value.code == code
