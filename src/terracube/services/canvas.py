"""A tile's canvas: the drawn cube's pixels placed on the whole tile grid, no-data outside the layer.

What the graph gives lies on the tile's grid (its loads landed there) or on a window of it (a load
smaller than the tile); a graph that moved its cube elsewhere (``resample_spatial``) is reprojected
back. Numpy- and dask-backed cubes alike: a tile's loads usually read at once (``ProcessEnv.eager``).
"""

from __future__ import annotations

import numpy as np

from terracube.errors import ProcessGraphInvalid
from terracube.services.grid import MAX_LATITUDE


def on_grid(cube, grid) -> np.ndarray:
    """The cube's pixels (bands, rows, columns) on the whole tile grid; NaN where it has none."""
    from terracube.cube import crs_of

    if "bands" not in cube.dims:
        cube = cube.expand_dims("bands")
    cube = cube.transpose("bands", "y", "x")
    offset = _window_offset(cube, grid)
    if offset is None:  # the graph moved the cube off the tile's grid (resample_spatial): put it back
        if crs_of(cube) is None:
            raise ProcessGraphInvalid("This process graph cannot be drawn as map tiles: its result has no spatial reference system.")
        # As one dask block, also when it was read at once: odc-geo warps numpy and dask arrays by different
        # code, whose nearest-neighbour picks differ within GDAL's tolerance; the tile must not depend on that.
        cube = cube.astype("float32").chunk().odc.reproject(grid, resampling="nearest", dst_nodata=np.nan).transpose("bands", ...)
        offset = (0, 0)
    values = np.asarray(cube.data.compute(scheduler="synchronous") if hasattr(cube.data, "compute") else cube.data, dtype=np.float32)
    if values.shape[1:] == tuple(grid.shape.yx):
        return values
    canvas = np.full((values.shape[0], *grid.shape.yx), np.nan, dtype=np.float32)
    row, col = offset
    canvas[:, row : row + values.shape[1], col : col + values.shape[2]] = values
    return canvas


def _window_offset(cube, grid) -> tuple[int, int] | None:
    """Where the cube lies on the grid, as (row, column) of its first pixel, if it is a window of it."""
    xs, ys = cube["x"].values, cube["y"].values
    if not len(xs) or not len(ys):
        return None
    step = grid.affine.a
    col = (xs[0] - grid.affine.c) / step - 0.5
    row = (grid.affine.f - ys[0]) / step - 0.5
    same_step = (len(xs) < 2 or abs(xs[1] - xs[0] - step) < 1e-6 * step) and (len(ys) < 2 or abs(ys[0] - ys[1] - step) < 1e-6 * step)
    if not same_step or abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        return None
    row, col = round(row), round(col)
    if row < 0 or col < 0 or row + len(ys) > grid.shape.y or col + len(xs) > grid.shape.x:
        return None
    return row, col


def mask_outside(values: np.ndarray, grid, extent) -> None:
    """No-data outside the service's configured extent (whole pixels: a pixel whose centre is outside)."""
    from pyproj import Transformer

    to_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (x0, x1), (y0, y1) = to_3857.transform([extent[0], extent[2]], [max(extent[1], -MAX_LATITUDE), min(extent[3], MAX_LATITUDE)])
    step = grid.affine.a
    xs = grid.affine.c + (np.arange(grid.shape.x) + 0.5) * step
    ys = grid.affine.f - (np.arange(grid.shape.y) + 0.5) * step
    outside = ~((ys >= y0) & (ys <= y1))[:, None] | ~((xs >= x0) & (xs <= x1))[None, :]
    values[:, outside] = np.nan
