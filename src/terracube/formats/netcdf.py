"""netCDF, written and read: CF conventions, one variable per band, the CRS as a grid mapping.

Each variable also carries the cube's openEO dimension types as a JSON attribute
(``openeo:dimension_types``), which ``read_netcdf`` reads, so a result loaded back is the same
cube: a temporal dimension with period labels (``2020-djf``) or one not named ``t`` stays temporal,
the dimensions come back in the written order, and a one-band result keeps its ``bands`` dimension.
Without that attribute (any other netCDF file) time coordinates are temporal, ``x``/``y``
spatial, ``bands`` bands, anything else 'other'.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from terracube.cube import DIM_BANDS, DIM_GEOMETRY, dimension_type, with_types
from terracube.errors import FormatUnsuitable


def write_netcdf(data, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    if not isinstance(data, xr.DataArray):
        data = xr.DataArray(np.asarray(data))
    cube = data.copy()
    types = {str(dim): dimension_type(data, dim) for dim in data.dims}
    cube.attrs = {}
    if DIM_BANDS in cube.dims:
        dataset = cube.to_dataset(dim=DIM_BANDS)
    else:
        dataset = cube.to_dataset(name=_variable_name(cube))
    dataset = dataset.rename({name: str(name) for name in dataset.data_vars})
    if "spatial_ref" in dataset.coords:
        for name in dataset.data_vars:
            # A cube read from netCDF carries grid_mapping in its encoding; xarray refuses it in both places.
            dataset[name].encoding.pop("grid_mapping", None)
            dataset[name].attrs["grid_mapping"] = "spatial_ref"
    if DIM_GEOMETRY not in dataset.dims:
        for name in dataset.data_vars:
            dataset[name].attrs["openeo:dimension_types"] = json.dumps(types)
    if DIM_GEOMETRY in dataset.dims:
        # A vector cube: geometries as CF geometry containers (xvec), which xvec decodes back.
        dataset = dataset.xvec.encode_cf()
    dataset.attrs["Conventions"] = "CF-1.9"
    dataset.attrs["source"] = "terracube"
    path = directory / f"{options.get('filename_prefix', 'openEO')}.nc"
    dataset.compute(**(compute or {})).to_netcdf(path, engine="h5netcdf")
    return [path]


def _variable_name(cube: xr.DataArray) -> str:
    """``var``, unless a dimension or coordinate is named so (``add_dimension(name="var")``)."""
    name = "var"
    while name in cube.dims or name in cube.coords:
        name = f"{name}_"
    return name


def read_netcdf(path: Path) -> xr.DataArray:
    """A netCDF file as a lazy cube: one data variable, or one variable per band as terracube writes them."""
    dataset = xr.open_dataset(path, engine="h5netcdf", chunks={})
    names = [n for n in dataset.data_vars if n not in ("spatial_ref", "crs")]
    if not names:
        raise FormatUnsuitable("The netCDF file has no data variable.")
    if len(names) == 1:
        array = dataset[names[0]]
    else:  # one variable per band, as terracube writes its netCDF results
        array = xr.concat([dataset[n] for n in names], dim=DIM_BANDS).assign_coords(bands=np.array(names, dtype=object))
        array.attrs = dict(dataset[names[0]].attrs)
    types = dimension_types_of(array)
    if len(names) == 1 and DIM_BANDS in types and DIM_BANDS not in array.dims:
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


def dimension_types_of(array: xr.DataArray) -> dict[str, str]:
    """The recorded ``openeo:dimension_types``, else the types the dimensions' names and labels suggest."""
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
        elif dim == DIM_BANDS:
            types[str(dim)] = "bands"
        else:
            types[str(dim)] = "other"
    return types


def _with_crs(array: xr.DataArray, dataset: xr.Dataset) -> xr.DataArray:
    """The CRS of the file's grid mapping (``spatial_ref`` or ``crs``) as odc-geo's, on a cube with ``x`` and ``y``."""
    import odc.geo.xr  # noqa: F401 - the .odc accessor

    for name in ("spatial_ref", "crs"):
        if name in dataset.variables:
            wkt = dataset[name].attrs.get("crs_wkt") or dataset[name].attrs.get("spatial_ref")
            if wkt and "x" in array.dims and "y" in array.dims:
                return array.drop_vars(name, errors="ignore").odc.assign_crs(wkt)
    return array
