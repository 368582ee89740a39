"""The request grid rule, checked against the grid CDSE answers the tutorial on."""

from terracube.data.grid import bounds_in, geobox_for_extent, snap_outward

from tests.conftest import TUTORIAL_AOI, TUTORIAL_BOUNDS, TUTORIAL_SHAPE


def test_tutorial_box_lands_on_the_cdse_grid():
    geobox = geobox_for_extent(TUTORIAL_AOI, "EPSG:32632", 10)
    assert geobox.crs.epsg == 32632
    assert (geobox.shape.y, geobox.shape.x) == TUTORIAL_SHAPE
    assert tuple(geobox.boundingbox) == TUTORIAL_BOUNDS
    assert geobox.resolution.x == 10 and geobox.resolution.y == -10


def test_snapping_is_outward_and_keeps_grid_aligned_bounds():
    assert snap_outward((362157.6, 5598162.5, 366631.8, 5601186.3), 10) == TUTORIAL_BOUNDS
    assert snap_outward(TUTORIAL_BOUNDS, 10) == TUTORIAL_BOUNDS
    assert snap_outward((362157.6, 5598162.5, 366631.8, 5601186.3), 60) == (362100, 5598120, 366660, 5601240)


def test_a_box_already_in_the_native_crs_is_not_reprojected():
    extent = dict(zip(("west", "south", "east", "north"), TUTORIAL_BOUNDS), crs=32632)
    assert bounds_in(extent, "EPSG:32632") == TUTORIAL_BOUNDS
    geobox = geobox_for_extent({**extent, "crs": "EPSG:32632"}, "EPSG:32632", 20)
    assert (geobox.shape.y, geobox.shape.x) == (152, 225)
