"""netCDF output: CF conventions, one variable per band, the CRS as a grid mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from terracube.cube import DIM_BANDS, DIM_GEOMETRY


def write_netcdf(data, directory: Path, options: dict) -> list[Path]:
    if not isinstance(data, xr.DataArray):
        data = xr.DataArray(np.asarray(data))
    cube = data.copy()
    cube.attrs = {}
    if DIM_BANDS in cube.dims:
        dataset = cube.to_dataset(dim=DIM_BANDS)
    else:
        dataset = cube.to_dataset(name="var")
    dataset = dataset.rename({name: str(name) for name in dataset.data_vars})
    if "spatial_ref" in dataset.coords:
        for name in dataset.data_vars:
            # A cube read from netCDF carries grid_mapping in its encoding; xarray refuses it in both places.
            dataset[name].encoding.pop("grid_mapping", None)
            dataset[name].attrs["grid_mapping"] = "spatial_ref"
    if DIM_GEOMETRY in dataset.dims:
        # A vector cube: geometries as CF geometry containers (xvec), which xvec decodes back.
        dataset = dataset.xvec.encode_cf()
    dataset.attrs["Conventions"] = "CF-1.9"
    dataset.attrs["source"] = "terracube"
    path = directory / f"{options.get('filename_prefix', 'openEO')}.nc"
    dataset.compute().to_netcdf(path, engine="h5netcdf")
    return [path]
