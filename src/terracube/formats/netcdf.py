"""netCDF output: CF conventions, one variable per band, the CRS as a grid mapping.

Each variable also carries the cube's openEO dimension types as a JSON attribute
(``openeo:dimension_types``), which ``load_url`` reads, so a result loaded back is the same cube:
a temporal dimension with period labels (``2020-djf``) or one not named ``t`` stays temporal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from terracube.cube import DIM_BANDS, DIM_GEOMETRY, dimension_type


def write_netcdf(data, directory: Path, options: dict) -> list[Path]:
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
    dataset.compute().to_netcdf(path, engine="h5netcdf")
    return [path]


def _variable_name(cube: xr.DataArray) -> str:
    """``var``, unless a dimension or coordinate is named so (``add_dimension(name="var")``)."""
    name = "var"
    while name in cube.dims or name in cube.coords:
        name = f"{name}_"
    return name
