"""filter_bbox, filter_temporal, filter_bands on labelled cubes."""

from __future__ import annotations

import numpy as np
import pytest

from terracube.data.grid import bounds_in, geobox_for_extent
from terracube.errors import BandFilterNotFound, ProcessError
from terracube.processes.cubes_filter import filter_bands, filter_bbox, filter_temporal

from tests.processes.helpers import make_cube

# The seed tutorial's box, and the grid CDSE answers it on (EPSG:32632, 10 m).
TUTORIAL_AOI = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
TUTORIAL_BOUNDS = (362150.0, 5598160.0, 366640.0, 5601190.0)


@pytest.fixture
def wide_cube():
    """A cube around the tutorial box, larger on every side, on the Sentinel-2 10 m grid."""
    return make_cube(
        None, times=("2021-07-21",), bands=("B04",), shape=(400, 600), origin=(361000.0, 5601900.0), chunks={"y": 128, "x": 128}
    )


def test_filter_bbox_keeps_the_pixels_whose_centre_is_in_the_box(wide_cube):
    result = filter_bbox(wide_cube, TUTORIAL_AOI)
    # The box reprojected to the cube's CRS; the spec keeps pixel centres inside it.
    west, south, east, north = bounds_in(TUTORIAL_AOI, "EPSG:32632")
    xs, ys = wide_cube.x.values, wide_cube.y.values
    np.testing.assert_array_equal(result.x.values, xs[(xs >= west) & (xs <= east)])
    np.testing.assert_array_equal(result.y.values, ys[(ys >= south) & (ys <= north)])
    # Inside the grid load_collection gives for the same extent (snapped outward, as CDSE), a
    # pixel narrower on a side where the box cuts a pixel short of its centre.
    loaded = geobox_for_extent(TUTORIAL_AOI, "EPSG:32632", 10)
    assert 447 <= result.sizes["x"] <= 449 and 301 <= result.sizes["y"] <= 303
    assert loaded.boundingbox.left < result.x.values[0] and result.x.values[-1] < loaded.boundingbox.right
    assert result.odc.crs.epsg == 32632 and result.dims == wide_cube.dims and result.dtype == np.float32
    # The values are the same pixels, not resampled ones.
    np.testing.assert_array_equal(result.values, wide_cube.sel(x=result.x, y=result.y).values)


def test_filter_bbox_in_the_cube_crs_and_twice(wide_cube):
    box = {"west": 362150, "south": 5598160, "east": 366640, "north": 5601190, "crs": 32632}
    once = filter_bbox(wide_cube, box)
    assert tuple(once.odc.geobox.boundingbox) == TUTORIAL_BOUNDS  # a box on pixel edges: whole pixels
    twice = filter_bbox(once, box)
    assert twice.sizes == once.sizes  # filtering a filtered cube changes nothing (pushdown relies on it)
    assert filter_bbox(filter_bbox(wide_cube, TUTORIAL_AOI), TUTORIAL_AOI).sizes == filter_bbox(wide_cube, TUTORIAL_AOI).sizes


def test_filter_bbox_outside_gives_an_empty_cube(wide_cube):
    result = filter_bbox(wide_cube, {"west": 16.1, "south": 48.1, "east": 16.6, "north": 48.6})
    assert result.sizes["x"] == 0 and result.sizes["y"] == 0 and result.sizes["t"] == 1


@pytest.fixture
def series():
    return make_cube(None, times=("2021-06-12", "2021-06-14T10:30:00", "2021-07-21", "2021-07-22"), bands=("B04",), shape=(2, 2))


def labels(cube):
    return [str(v)[:19] for v in cube.t.values]


@pytest.mark.parametrize(
    "extent, expected",
    [
        (["2021-06-12", "2021-06-14"], ["2021-06-12T00:00:00"]),  # the end is excluded
        (["2021-06-12", "2021-06-15"], ["2021-06-12T00:00:00", "2021-06-14T10:30:00"]),
        (["2021-06-14T10:30:00Z", None], ["2021-06-14T10:30:00", "2021-07-21T00:00:00", "2021-07-22T00:00:00"]),
        ([None, "2021-06-14T12:30:00+02:00"], ["2021-06-12T00:00:00"]),  # 12:30+02:00 is 10:30 UTC: excluded
        (["2021-07-21T00:00:00Z", "2030-01-01"], ["2021-07-21T00:00:00", "2021-07-22T00:00:00"]),
        (["2020-01-01", "2021-01-01"], []),
    ],
)
def test_filter_temporal_is_half_open(series, extent, expected):
    result = filter_temporal(series, extent)
    assert labels(result) == expected
    assert result.dims == series.dims and result.odc.crs.epsg == 32632


@pytest.mark.parametrize(
    "extent, dimension, code",
    [
        (["2021-07-01", "2021-06-01"], None, "TemporalExtentEmpty"),
        (["2021-07-01", "2021-07-01"], None, "TemporalExtentEmpty"),
        (["2021-06-01", "2021-07-01"], "time", "DimensionNotAvailable"),
    ],
)
def test_filter_temporal_errors(series, extent, dimension, code):
    with pytest.raises(ProcessError) as error:
        filter_temporal(series, extent, dimension)
    assert error.value.code == code


def test_filter_temporal_without_a_temporal_dimension(series):
    with pytest.raises(ProcessError) as error:
        filter_temporal(series.isel(t=0, drop=True), ["2021-06-01", "2021-07-01"])
    assert error.value.code == "DimensionNotAvailable"


@pytest.fixture
def s2():
    cube = make_cube(None, times=("2021-07-21",), bands=("B02", "B03", "B04", "B08", "SCL"), shape=(2, 2))
    return cube.assign_coords(
        common_name=("bands", ["blue", "green", "red", "nir", ""]),
        wavelength=("bands", [0.49, 0.56, 0.665, 0.842, np.nan]),
    )


def test_filter_bands_by_name_in_the_order_asked(s2):
    result = filter_bands(s2, ["B08", "B04"])
    assert list(result.bands.values) == ["B08", "B04"]
    np.testing.assert_array_equal(result.sel(bands="B08").values, s2.sel(bands="B08").values)
    assert result.dims == s2.dims and result.odc.crs.epsg == 32632


def test_filter_bands_by_common_name_and_wavelength(s2):
    assert list(filter_bands(s2, ["nir", "red"]).bands.values) == ["B08", "B04"]
    assert list(filter_bands(s2, wavelengths=[[0.6, 0.9]]).bands.values) == ["B04", "B08"]
    assert list(filter_bands(s2, ["SCL"], [[0.4, 0.5]]).bands.values) == ["SCL", "B02"]


def test_filter_bands_errors(s2):
    with pytest.raises(BandFilterNotFound, match="B8A") as error:
        filter_bands(s2, ["B8A"])
    assert error.value.code == "BandFilterNotFound" and "B08 (nir)" in error.value.message
    with pytest.raises(ProcessError) as error:
        filter_bands(s2, [])
    assert error.value.code == "BandFilterParameterMissing"
    with pytest.raises(ProcessError) as error:
        filter_bands(s2.isel(bands=0, drop=True), ["B04"])
    assert error.value.code == "DimensionMissing"
