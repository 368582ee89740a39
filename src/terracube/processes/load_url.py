"""load_url (a proposal): a file from an HTTP(S) URL as a data cube.

Supported input formats: netCDF (CF: one variable, or one variable per band as terracube's own
netCDF results have), GeoTIFF (raster bands become the ``bands`` dimension) and GeoJSON (a vector
cube, see ``load_geojson``). The file is downloaded once into a temporary folder and opened
lazily; only ``http://`` and ``https://`` URLs are fetched, as the spec says.

Dimension types: a variable attribute ``openeo:dimension_types`` (JSON, in the cube's dimension
order, as terracube's netCDF results carry it) wins; otherwise time coordinates are temporal,
``x``/``y`` spatial, ``bands`` bands, anything else 'other'. With that attribute, a result read
back has its dimensions in the written order, and a one-band result keeps its ``bands`` dimension.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from terracube.errors import OpenEOError, ProcessError, ProcessParameterInvalid
from terracube.processes.cubes_dimensions import with_types

TIMEOUT = 60
MAX_BYTES = 2 * 1024**3
FORMATS = {"netcdf": "netCDF", "nc": "netCDF", "gtiff": "GTiff", "geotiff": "GTiff", "cog": "GTiff", "tiff": "GTiff", "geojson": "GeoJSON", "json": "GeoJSON"}


def download(url: str) -> Path:
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ProcessParameterInvalid(f"'url' must be an http:// or https:// URL, got {url!r}.")
    folder = Path(tempfile.gettempdir()) / "terracube-load-url"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(url.encode()).hexdigest()
    partial = path.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, partial.open("wb") as out:  # noqa: S310 - http(s) only, checked above
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ProcessParameterInvalid(f"The file at {url} is larger than {MAX_BYTES // 1024**2} MiB.")
                out.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        raise OpenEOError(f"Could not read {url}: {error}", code="FileNotFound", status=400) from error
    partial.replace(path)
    return path


def dimension_types_of(array: xr.DataArray) -> dict[str, str]:
    declared = array.attrs.get("openeo:dimension_types")
    if isinstance(declared, str):
        try:
            return {str(k): str(v) for k, v in json.loads(declared).items()}
        except ValueError:
            pass
    types = {}
    for dim in array.dims:
        if dim in array.indexes and np.issubdtype(array.indexes[dim].dtype, np.datetime64):
            types[str(dim)] = "temporal"
        elif dim in ("x", "y"):
            types[str(dim)] = "spatial"
        elif dim == "bands":
            types[str(dim)] = "bands"
        else:
            types[str(dim)] = "other"
    return types


def _with_crs(array: xr.DataArray, dataset: xr.Dataset | None = None) -> xr.DataArray:
    import odc.geo.xr  # noqa: F401 - the .odc accessor

    source = dataset if dataset is not None else array
    for name in ("spatial_ref", "crs"):
        if name in source.variables:
            wkt = source[name].attrs.get("crs_wkt") or source[name].attrs.get("spatial_ref")
            if wkt and "x" in array.dims and "y" in array.dims:
                return array.drop_vars(name, errors="ignore").odc.assign_crs(wkt)
    return array


def read_netcdf(path: Path) -> xr.DataArray:
    dataset = xr.open_dataset(path, engine="h5netcdf", chunks={})
    names = [n for n in dataset.data_vars if n not in ("spatial_ref", "crs")]
    if not names:
        raise ProcessError("FormatUnsuitable", "The netCDF file has no data variable.")
    if len(names) == 1:
        array = dataset[names[0]]
    else:  # one variable per band, as terracube writes its netCDF results
        array = xr.concat([dataset[n] for n in names], dim="bands").assign_coords(bands=np.array(names, dtype=object))
        array.attrs = dict(dataset[names[0]].attrs)
    types = dimension_types_of(array)
    if len(names) == 1 and "bands" in types and "bands" not in array.dims:
        # A one-band result: terracube names the variable after the band and records the dimension.
        array = array.expand_dims(bands=np.array([names[0]], dtype=object), axis=0)
    if set(types) == set(array.dims):
        array = array.transpose(*types)  # the recorded order: bands were variables, not a dimension
    for dim in array.dims:
        if dim in array.indexes and array.indexes[dim].dtype.kind in "SU":
            array = array.assign_coords({dim: array.indexes[dim].astype(object)})
    array = _with_crs(array, dataset)
    array.attrs = {k: v for k, v in array.attrs.items() if k not in ("openeo:dimension_types", "grid_mapping")}
    return with_types(array, types)


def read_gtiff(path: Path) -> xr.DataArray:
    import rasterio
    from affine import Affine

    with rasterio.open(path) as source:
        values = source.read()
        transform: Affine = source.transform
        crs = source.crs
        names = [d or f"band_{i + 1}" for i, d in enumerate(source.descriptions)]
        nodata = source.nodata
    values = values.astype("float32") if values.dtype.kind != "f" else values
    if nodata is not None and not np.isnan(nodata):
        values = np.where(values == nodata, np.nan, values)
    xs = transform.c + transform.a * (np.arange(values.shape[2]) + 0.5)
    ys = transform.f + transform.e * (np.arange(values.shape[1]) + 0.5)
    cube = xr.DataArray(values, dims=("bands", "y", "x"), coords={"bands": np.array(names, dtype=object), "y": ys, "x": xs})
    if crs is not None:
        cube = cube.odc.assign_crs(crs.to_wkt())
    return with_types(cube.chunk(), {"bands": "bands", "y": "spatial", "x": "spatial"})


def load_url(url: str, format: str, options: dict | None = None) -> Any:  # noqa: A002 - the spec's name
    kind = FORMATS.get(str(format).lower())
    if kind is None:
        raise ProcessError("FormatUnsuitable", f"Format '{format}' can't be loaded; supported: netCDF, GTiff, GeoJSON.")
    path = download(url)
    try:
        if kind == "netCDF":
            return read_netcdf(path)
        if kind == "GTiff":
            return read_gtiff(path)
        from terracube.processes.vector import load_geojson

        return load_geojson(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as error:
        raise ProcessError("FormatUnsuitable", f"The file at {url} can't be read as {kind}: {error}") from error
