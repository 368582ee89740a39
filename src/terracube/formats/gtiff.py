"""GeoTIFF, written and read: Cloud-Optimized, one raster band per label of the non-spatial dimensions.

Large cubes are computed and written block by block in one dask computation, so memory stays
bounded by the chunks in flight rather than the area; the tiled GeoTIFF is then copied into a COG
with overviews. Small ones (the most common request, a map tile's area or a tutorial's box) are
computed into memory and written as the COG at once: the scratch file and its copy were half the
time of such a request.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from rasterio.windows import Window

from terracube.cube import DIM_T, DIM_X, DIM_Y, is_raster_cube, with_types
from terracube.errors import ProcessParameterInvalid

# Results up to this size are computed whole and written from memory (held twice while written:
# the array and GDAL's in-memory copy); larger ones block by block, through a scratch file.
IN_MEMORY_BYTES = 64 * 2**20


def _label(value) -> str:
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="D"))
    return str(value)


def _output_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == np.float64:
        return np.dtype("float32")
    if dtype == np.bool_:
        return np.dtype("uint8")
    return np.dtype(dtype)


class _WindowWriter:
    """A dask ``store`` target: each computed block goes straight into its window of the file."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __setitem__(self, key: tuple[slice, slice, slice], block: np.ndarray) -> None:
        bands, rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        self.dataset.write(block, indexes=list(range(bands.start + 1, bands.stop + 1)), window=window)


def _write_blocks(values, dataset, compute: dict) -> None:
    """Compute and write the whole cube in one dask computation, block by block as they finish.

    One computation lets every core work on every part of the image (strips computed one after
    the other left a core idle at each strip's end), and each block is freed once written, so
    memory is bounded by the chunks in flight, not by the area.
    """
    if not isinstance(values, da.Array):
        dataset.write(np.asarray(values))
        return
    writer = _WindowWriter(dataset)
    client = _distributed_client(compute)
    if client is None:  # threads of this process write themselves, one at a time (a GDAL handle is not thread-safe)
        da.store(values, writer, lock=True, **compute)
        return
    # Workers may be other processes or machines: blocks come back here to be written.
    from distributed import as_completed

    futures = client.compute(list(values.to_delayed().ravel()))
    windows = dict(zip((future.key for future in futures), da.core.slices_from_chunks(values.chunks)))
    for future, block in as_completed(futures, with_results=True):
        writer[windows[future.key]] = block
        future.release()


def _distributed_client(compute: dict):
    """The Dask client ``compute`` would use here (a batch job's), or None for dask's local threads."""
    return getattr(dask.base.get_scheduler(scheduler=compute.get("scheduler")), "__self__", None)


def write_gtiff(data, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    if not is_raster_cube(data):
        raise ProcessParameterInvalid("GTiff needs a raster data cube with x and y dimensions; use JSON for other values.")
    cube: xr.DataArray = data
    geobox = cube.odc.geobox
    others = [dim for dim in cube.dims if dim not in (DIM_Y, DIM_X)]
    # t before bands, as CDSE orders raster bands of a multi-date GeoTIFF.
    others.sort(key=lambda dim: 0 if dim == DIM_T else 1)
    cube = cube.transpose(*others, DIM_Y, DIM_X)
    labels = [[_label(value) for value in cube[dim].values] for dim in others]
    descriptions = ["_".join(combo) for combo in itertools.product(*labels)] or ["band_1"]
    dtype = _output_dtype(cube.dtype)
    nodata = np.nan if np.issubdtype(dtype, np.floating) else cube.attrs.get("nodata")
    height, width = cube.sizes[DIM_Y], cube.sizes[DIM_X]
    profile = {
        "width": width,
        "height": height,
        "count": len(descriptions),
        "dtype": dtype.name,
        "crs": geobox.crs.to_wkt() if geobox.crs is not None else None,
        "transform": geobox.affine,
        "nodata": nodata,
    }
    path = directory / f"{options.get('filename_prefix', 'openEO')}.tif"
    values = cube.data.astype(dtype, copy=False).reshape((-1, height, width))
    # Deflate at its fastest level with the predictor (floating point for floats, horizontal for
    # integers): faster to write than deflate's default level and a quarter smaller for NDVI-like
    # floats, which deflate alone barely compresses (measured in bench/RESULTS.md, section 1).
    cog = {"driver": "COG", "compress": "deflate", "level": 1, "predictor": "YES", "blocksize": 512, "overview_resampling": "nearest"}
    if values.size * dtype.itemsize <= IN_MEMORY_BYTES:
        if isinstance(values, da.Array):
            (values,) = dask.compute(values, **(compute or {}))
        # Into GDAL's in-memory driver, then one copy into the COG. Not rasterio.open(path, "w",
        # driver="COG"): that copy runs as the file closes, holding the GIL throughout (measured:
        # 0.2 s for 2000 x 2000 pixels, when the server's event loop could not answer anyone).
        with rasterio.open(f"/vsimem/{uuid.uuid4().hex}", "w", driver="MEM", **profile) as memory:
            memory.write(values)
            for index, description in enumerate(descriptions, start=1):
                memory.set_band_description(index, description)
            with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
                rasterio.shutil.copy(memory, path, **cog)
        return [path]
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        tiled = Path(scratch) / "tiled.tif"
        # Uncompressed scratch: compressing here would happen under the writer's lock, serialising
        # the workers; the COG copy compresses once, on all cores.
        with rasterio.open(tiled, "w", driver="GTiff", tiled=True, blockxsize=512, blockysize=512, **profile) as dst:
            _write_blocks(values, dst, compute or {})
            for index, description in enumerate(descriptions, start=1):
                dst.set_band_description(index, description)
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            rasterio.shutil.copy(tiled, path, **cog)
    return [path]


def read_gtiff(path: Path) -> xr.DataArray:
    """A GeoTIFF as a cube: its raster bands (named by their descriptions) become ``bands``, nodata NaN."""
    with rasterio.open(path) as source:
        values = source.read()
        transform = source.transform
        crs = source.crs
        names = [d or f"band_{i + 1}" for i, d in enumerate(source.descriptions)]
        nodata = source.nodata
    values = values.astype("float32") if values.dtype.kind != "f" else values
    if nodata is not None and not np.isnan(nodata):
        values = np.where(values == nodata, np.nan, values)
    xs = transform.c + transform.a * (np.arange(values.shape[2]) + 0.5)
    ys = transform.f + transform.e * (np.arange(values.shape[1]) + 0.5)
    cube = xr.DataArray(values, dims=("bands", DIM_Y, DIM_X), coords={"bands": np.array(names, dtype=object), DIM_Y: ys, DIM_X: xs})
    if crs is not None:
        import odc.geo.xr  # noqa: F401 - the .odc accessor

        cube = cube.odc.assign_crs(crs.to_wkt())
    return with_types(cube.chunk(), {"bands": "bands", DIM_Y: "spatial", DIM_X: "spatial"})
