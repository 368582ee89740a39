"""The filters: filter_bbox, filter_temporal, filter_bands.

They select labels, never values, so they are cheap on any cube; ``graph.plan`` also folds them into
``load_collection`` so that less is read. The filters still run on the narrowed cube, so folding
never changes the answer: ``filter_bbox`` keeps the spec's pixels (centre in the box) from a load
that snapped its extent outward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from terracube.cube import DIM_X, DIM_Y, crs_of, dimension_type, is_raster_cube
from terracube.data.grid import bounds_in
from terracube.errors import BandFilterNotFound, ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import select
from terracube.processes.cubes import band_labels, bands_dimension, common_names, require_cube, resolve_bands

# --- filter_bbox ----------------------------------------------------------------------------


def _inside(coords: np.ndarray, low: float, high: float) -> slice:
    """The (contiguous) positions of coordinates within ``[low, high]``, as a slice: cheap on dask."""
    positions = np.nonzero((coords >= low) & (coords <= high))[0]
    if len(positions) == 0:
        return slice(0, 0)
    return slice(int(positions[0]), int(positions[-1]) + 1)


def filter_bbox(data: xr.DataArray, extent: dict) -> xr.DataArray:
    """Pixels whose centre lies in the extent (boundary included), as the spec says.

    The extent is reprojected to the cube's CRS (its envelope there). ``load_collection`` snaps its
    ``spatial_extent`` outward to whole pixels instead (CDSE's grid), so when the planner folds a
    filter_bbox into the load, the load reads a little more and this filter, which still runs,
    gives the spec's pixels.
    """
    require_cube(data)
    if not is_raster_cube(data):
        raise ProcessParameterInvalid("filter_bbox needs a raster cube with spatial dimensions 'x' and 'y'.")
    if not isinstance(extent, dict) or not {"west", "south", "east", "north"} <= set(extent):
        raise ProcessParameterInvalid("'extent' must be a bounding box with 'west', 'south', 'east' and 'north'.")
    crs = crs_of(data)
    if crs is None:
        if extent.get("crs") is not None:
            raise ProcessParameterInvalid("The cube has no coordinate reference system, so the extent can't be reprojected to it.")
        west, south, east, north = (float(extent[k]) for k in ("west", "south", "east", "north"))
    else:
        west, south, east, north = bounds_in(extent, crs)
    xs = data.indexes[DIM_X].values.astype(float)
    ys = data.indexes[DIM_Y].values.astype(float)
    return data.isel({DIM_X: _inside(xs, west, east), DIM_Y: _inside(ys, south, north)})


# --- filter_temporal ------------------------------------------------------------------------


def to_utc_instant(value: Any) -> np.datetime64:
    """An RFC 3339 date or date-time as a naive UTC ``datetime64[ns]``, like the cube's ``t`` labels."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ProcessParameterInvalid(f"{value!r} is not a date or date-time (RFC 3339, e.g. 2021-07-01 or 2021-07-01T00:00:00Z).") from error
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_datetime64().astype("datetime64[ns]")


def temporal_dimensions(data: xr.DataArray, dimension: str | None) -> list[str]:
    if dimension is not None:
        if dimension not in data.dims:
            raise ProcessError("DimensionNotAvailable", f"The cube has no dimension '{dimension}'; its dimensions are {', '.join(map(str, data.dims))}.")
        return [dimension]
    dims = [d for d in data.dims if dimension_type(data, d) == "temporal"]
    if not dims:
        raise ProcessError("DimensionNotAvailable", f"The cube has no temporal dimension; its dimensions are {', '.join(map(str, data.dims))}.")
    return dims


def filter_temporal(data: xr.DataArray, extent: list, dimension: str | None = None) -> xr.DataArray:
    """Labels in ``[start, end)``; a null bound is open."""
    require_cube(data)
    if not isinstance(extent, (list, tuple)) or len(extent) != 2:
        raise ProcessParameterInvalid("'extent' must be a list of two dates or date-times: [start, end].")
    if extent[0] is None and extent[1] is None:
        raise ProcessParameterInvalid("'extent' can't be open at both ends: give a start, an end or both.")
    start = to_utc_instant(extent[0]) if extent[0] is not None else None
    end = to_utc_instant(extent[1]) if extent[1] is not None else None
    if start is not None and end is not None and end <= start:
        raise ProcessError("TemporalExtentEmpty", f"The temporal extent is empty: the end {extent[1]} is not later than the start {extent[0]}.")
    for dim in temporal_dimensions(data, dimension):
        labels = data.indexes[dim]
        if not np.issubdtype(labels.dtype, np.datetime64):
            labels = pd.DatetimeIndex([to_utc_instant(v) for v in labels])
        values = labels.values.astype("datetime64[ns]")
        keep = np.ones(len(values), dtype=bool)
        if start is not None:
            keep &= values >= start
        if end is not None:
            keep &= values < end
        data = data.isel({dim: np.nonzero(keep)[0]})
    return data


# --- filter_bands ---------------------------------------------------------------------------

_WAVELENGTH_COORDS = ("wavelength", "center_wavelength", "eo:center_wavelength")


def _wavelengths(data: xr.DataArray, dim: str) -> np.ndarray | None:
    for name in _WAVELENGTH_COORDS:
        if name in data.coords and data.coords[name].dims == (dim,):
            return np.asarray(data.coords[name].values, dtype=float)
    return None


def filter_bands(data: xr.DataArray, bands: list | None = None, wavelengths: list | None = None) -> xr.DataArray:
    """Bands by name or common name (in the order asked), then by wavelength range (in cube order)."""
    require_cube(data)
    bands, wavelengths = list(bands or []), list(wavelengths or [])
    if not bands and not wavelengths:
        raise ProcessError("BandFilterParameterMissing", "filter_bands needs 'bands' or 'wavelengths'.")
    dim = bands_dimension(data, missing_code="DimensionMissing")
    labels = band_labels(data, dim)
    selected: list = []
    for name in bands:
        matches = resolve_bands(data, dim, name)
        if not matches:
            commons = common_names(data, dim)
            known = ", ".join(f"{b} ({commons[b]})" if b in commons else str(b) for b in labels)
            raise BandFilterNotFound(f"filter_bands: the cube has no band '{name}'; its bands are {known}.")
        selected += [m for m in matches if m not in selected]
    if wavelengths:
        centres = _wavelengths(data, dim)
        for pair in wavelengths:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ProcessParameterInvalid(f"Each wavelength range must be [min, max] in micrometres, got {pair!r}.")
            if centres is None:
                continue
            low, high = float(pair[0]), float(pair[1])
            selected += [b for b, c in zip(labels, centres) if low <= c <= high and b not in selected]
        if not selected:
            raise BandFilterNotFound(
                "filter_bands: no band matches the wavelengths "
                + ("(the cube has no wavelength metadata)." if centres is None else f"{wavelengths}.")
            )
    positions = [labels.index(b) for b in selected]
    if positions == list(range(positions[0], positions[0] + len(positions))):
        # A run of neighbouring bands is a slice: a list would make dask copy every chunk in a task of its own.
        return select(data, dim, slice(positions[0], positions[0] + len(positions)))
    return data.isel({dim: positions})
