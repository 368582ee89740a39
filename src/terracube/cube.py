"""The data cube convention shared by every room.

A raster data cube is an ``xarray.DataArray`` whose dimensions are named after the openEO
dimension types: ``t`` (temporal, ``datetime64`` labels), ``bands`` (string labels), ``y`` and ``x``
(spatial, coordinates of pixel centres in the cube's CRS). Not every cube has every dimension:
reducing over ``t`` drops it. Nodata is NaN in floating point cubes; the CRS travels as odc-geo's
``spatial_ref`` coordinate, so ``cube.odc.geobox`` gives the grid.
"""

from __future__ import annotations

import xarray as xr

DIM_T = "t"
DIM_BANDS = "bands"
DIM_Y = "y"
DIM_X = "x"
# A vector cube (aggregate_spatial's result) has this dimension of shapely geometries, indexed by xvec.
DIM_GEOMETRY = "geometry"

DIMENSION_TYPES = {DIM_T: "temporal", DIM_BANDS: "bands", DIM_Y: "spatial", DIM_X: "spatial"}


def dimension_type(cube: xr.DataArray, name: str) -> str:
    """openEO type of a dimension; dimensions added by users are of type 'other'."""
    return cube.attrs.get("dimension_types", {}).get(name) or DIMENSION_TYPES.get(name, "other")


def with_types(data: xr.DataArray, types: dict[str, str]) -> xr.DataArray:
    """``data`` with the openEO types of its dimensions recorded (``dimension_type`` reads them)."""
    data.attrs = {**data.attrs, "dimension_types": {d: t for d, t in types.items() if d in data.dims}}
    return data


def is_raster_cube(value: object) -> bool:
    return isinstance(value, xr.DataArray) and DIM_X in value.dims and DIM_Y in value.dims


def is_vector_cube(value: object) -> bool:
    return isinstance(value, xr.DataArray) and DIM_GEOMETRY in value.dims


def crs_of(cube: xr.DataArray):
    """The cube's CRS as an odc-geo CRS, or None when it has no spatial reference."""
    try:
        return cube.odc.crs
    except Exception:  # a cube without spatial dims or spatial_ref
        return None
