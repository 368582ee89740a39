"""Write one scene's bands as Cloud-Optimized GeoTIFFs on the tile's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from terracube.data.sample.landscape import Area
from terracube.data.sample.scene import BAND_GSD


def write_cog(path: Path, array: np.ndarray, gsd: int, area: Area) -> None:
    profile = {
        "driver": "COG",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": "EPSG:32632",
        "transform": Affine(gsd, 0, area.west, 0, -gsd, area.north),
        "nodata": 0,
        # ZSTD at its fastest level: half deflate's CPU to write (the archive is built on first use)
        # and a quarter less to read, for a file within 2 % of deflate's size.
        "compress": "zstd",
        "predictor": 2,
        "level": 1,
        "blocksize": 256,
        "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def write_scene(directory: Path, bands: dict[str, np.ndarray], area: Area) -> dict[str, tuple[int, int]]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in bands.items():
        write_cog(directory / f"{name}.tif", array, BAND_GSD[name], area)
    return {name: array.shape for name, array in bands.items()}
