"""The pixel grid a request lands on.

CDSE answers a WGS84 box on the collection's native grid: the box is reprojected to the native UTM
zone and snapped outward to the pixel size (10 m for B04/B08). The tutorial's "after" request gives
EPSG:32632, 449 x 303 pixels, bounds (362150, 5598160, 366640, 5601190) that way, and so does
terracube. Sentinel-2 tile origins are multiples of 60 m, so snapping to multiples of the
resolution keeps 10, 20 and 60 m bands on the tile's own grid.
"""

from __future__ import annotations

import math

from affine import Affine
from odc.geo import CRS
from odc.geo.geobox import GeoBox
from pyproj import Transformer


def extent_crs(extent: dict) -> CRS:
    crs = extent.get("crs", 4326)
    if isinstance(crs, int) or (isinstance(crs, str) and crs.isdigit()):
        return CRS(f"EPSG:{int(crs)}")
    return CRS(crs)


def bounds_in(extent: dict, crs: CRS | str) -> tuple[float, float, float, float]:
    """A ``{"west", "south", "east", "north", "crs"}`` extent as bounds in ``crs``, densified so curved edges are covered."""
    source = extent_crs(extent)
    target = CRS(crs) if not isinstance(crs, CRS) else crs
    box = (float(extent["west"]), float(extent["south"]), float(extent["east"]), float(extent["north"]))
    if source == target:
        return box
    transformer = Transformer.from_crs(source.proj, target.proj, always_xy=True)
    return transformer.transform_bounds(*box, densify_pts=21)


def snap_outward(bounds: tuple[float, float, float, float], resolution: float) -> tuple[float, float, float, float]:
    # Round before floor/ceil so a bound that is already on the grid up to float noise stays put.
    def down(v: float) -> float:
        return math.floor(round(v / resolution, 6)) * resolution

    def up(v: float) -> float:
        return math.ceil(round(v / resolution, 6)) * resolution

    west, south, east, north = bounds
    return down(west), down(south), up(east), up(north)


def geobox_for_extent(extent: dict, crs: CRS | str, resolution: float) -> GeoBox:
    west, south, east, north = snap_outward(bounds_in(extent, crs), resolution)
    width = max(1, round((east - west) / resolution))
    height = max(1, round((north - south) / resolution))

    transform = Affine(resolution, 0, west, 0, -resolution, north)
    return GeoBox((height, width), transform, CRS(crs) if not isinstance(crs, CRS) else crs)


def grid_window(grid: GeoBox, extent: dict | None) -> GeoBox | None:
    """The pixels of ``grid`` whose area overlaps ``extent`` (any CRS; None: the whole grid), None when none do.

    A map tile reads every load onto the tile's own grid; a load with a smaller extent fills only
    its part of the tile, snapped outward to the tile's pixels.
    """
    if extent is None:
        return grid
    west, south, east, north = bounds_in(extent, grid.crs)
    inverse = ~grid.affine
    cols, rows = zip(*(inverse @ corner for corner in ((west, north), (east, south))))
    col0, col1 = sorted(cols)
    row0, row1 = sorted(rows)
    col0, row0 = max(0, math.floor(round(col0, 6))), max(0, math.floor(round(row0, 6)))
    col1, row1 = min(grid.shape.x, math.ceil(round(col1, 6))), min(grid.shape.y, math.ceil(round(row1, 6)))
    if col1 <= col0 or row1 <= row0:
        return None
    return grid[row0:row1, col0:col1]
