"""Processes that combine two cubes: mask and merge_cubes.

Both align the second cube to the first by labels (never by position) and check what the spec asks:
shared dimensions with the same labels, spatial grids matched when they differ by float noise (or,
for a mask, by nearest neighbour on a coarser grid in the same CRS), a resolver where labels overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from terracube.cube import crs_of, dimension_type
from terracube.errors import ProcessError
from terracube.processes.cubes import cube_attrs, labels_close, like_cube, preview, replace_where, require_callback, require_cube


# --- mask -----------------------------------------------------------------------------------


def _check_same_labels(data: xr.DataArray, other: xr.DataArray, what: str) -> xr.DataArray:
    """``other`` with the coordinates of ``data`` on every dimension they share, after checking them.

    Spatial labels may differ by float noise; other labels must be equal. Different spatial grids in
    the same CRS are matched by nearest neighbour (``resample_cube_spatial``'s default method).
    """
    for dim in other.dims:
        if dim not in data.dims:
            raise ProcessError("IncompatibleDataCubes", f"The {what} has a dimension '{dim}' that the data cube does not have.")
    crs_data, crs_other = crs_of(data), crs_of(other)
    if crs_data is not None and crs_other is not None and crs_data != crs_other:
        raise ProcessError(
            "IncompatibleDataCubes",
            f"The {what} is in {crs_other}, the data cube in {crs_data}; resample one onto the other first (resample_cube_spatial).",
        )
    for dim in other.dims:
        mine, theirs = data.indexes.get(dim), other.indexes.get(dim)
        if mine is None or theirs is None:
            if data.sizes[dim] != other.sizes[dim]:
                raise ProcessError("IncompatibleDataCubes", f"The {what} has {other.sizes[dim]} labels along '{dim}', the data cube {data.sizes[dim]}.")
            continue
        if mine.equals(theirs):
            continue
        if dimension_type(data, dim) == "spatial" and len(mine) == len(theirs) and labels_close(mine, theirs):
            other = other.assign_coords({dim: mine})
            continue
        if dimension_type(data, dim) == "spatial" and np.issubdtype(theirs.dtype, np.number) and len(theirs) > 1:
            step = abs(float(theirs[1] - theirs[0]))
            other = other.reindex({dim: mine}, method="nearest", tolerance=step / 2 + 1e-9 * step)
            continue
        raise ProcessError(
            "IncompatibleDataCubes",
            f"The labels of dimension '{dim}' differ between the data cube and the {what}: "
            f"{preview(mine)} vs. {preview(theirs)}.",
        )
    return other


def mask(data: xr.DataArray, mask: xr.DataArray, replacement: Any = None) -> xr.DataArray:
    """Replace the values of ``data`` where ``mask`` is true or a non-zero number.

    A mask that lacks a dimension of ``data`` (e.g. ``bands``) applies to every label of it; so does
    a mask with a single band of its own (``SCL`` filtered and compared, the usual cloud mask), which
    the spec would reject for its labels. No-data (NaN) in the mask is neither true nor non-zero: it
    masks nothing.
    """
    require_cube(data)
    require_cube(mask, "mask")
    for dim in mask.dims:
        if dimension_type(mask, dim) == "bands" and mask.sizes[dim] == 1 and dim in data.dims:
            if dim not in data.indexes or dim not in mask.indexes or not data.indexes[dim].equals(mask.indexes[dim]):
                mask = mask.isel({dim: 0}, drop=True)
    aligned = _check_same_labels(data, mask, "mask")
    condition = xr.DataArray(aligned.data, dims=aligned.dims, coords={d: data.coords[d] for d in aligned.dims if d in data.coords})
    return replace_where(data, condition, replacement)


# --- merge_cubes ----------------------------------------------------------------------------


def _union_labels(cube1: xr.DataArray, cube2: xr.DataArray, dim: str) -> tuple[pd.Index, pd.Index, bool]:
    """(union of the labels, their intersection, whether cube2's labels were snapped onto cube1's)."""
    first, second = cube1.indexes[dim], cube2.indexes[dim]
    if first.equals(second):
        return first, first, False
    if dimension_type(cube1, dim) == "spatial" and len(first) == len(second) and labels_close(first, second):
        return first, first, True
    intersection = first.intersection(second, sort=False)
    if dimension_type(cube1, dim) in ("temporal", "spatial"):
        union = first.union(second)  # sorted: labels with an inherent order stay in it
        if first.is_monotonic_decreasing and len(first) > 1:
            union = union[::-1]
    else:
        union = first.append(second[~second.isin(first)])
    return union, intersection, False


def merge_cubes(cube1: xr.DataArray, cube2: xr.DataArray, overlap_resolver: Any = None, context: Any = None) -> xr.DataArray:
    require_cube(cube1, "cube1")
    require_cube(cube2, "cube2")
    crs1, crs2 = crs_of(cube1), crs_of(cube2)
    if crs1 is not None and crs2 is not None and crs1 != crs2:
        raise ProcessError("IncompatibleDataCubes", f"cube1 is in {crs1}, cube2 in {crs2}; resample one onto the other first.")
    if set(cube1.dims) != set(cube2.dims):
        return _merge_lower_dimensional(cube1, cube2, overlap_resolver, context)
    cube2 = cube2.transpose(*cube1.dims)
    unions, intersections, differing = {}, {}, []
    for dim in cube1.dims:
        if dim not in cube1.indexes or dim not in cube2.indexes:
            if cube1.sizes[dim] != cube2.sizes[dim]:
                raise ProcessError("IncompatibleDataCubes", f"Dimension '{dim}' has no labels and different sizes in the two cubes.")
            continue
        union, intersection, snapped = _union_labels(cube1, cube2, dim)
        if snapped:
            cube2 = cube2.assign_coords({dim: cube1.indexes[dim]})
        unions[dim], intersections[dim] = union, intersection
        if not union.equals(cube1.indexes[dim]) or not union.equals(cube2.indexes[dim]):
            differing.append(dim)
    overlap = all(len(i) > 0 for i in intersections.values())
    if overlap_resolver is not None:
        require_callback(overlap_resolver, "overlap_resolver")
    if overlap and overlap_resolver is None:
        shared = ", ".join(f"{d}: {preview(intersections[d])}" for d in differing) or "all labels"
        raise ProcessError("OverlapResolverMissing", f"The cubes overlap ({shared}); give an overlap_resolver to combine the values.")
    if not overlap and len(differing) == 1:
        # Disjoint along one dimension (e.g. other bands): a plain concatenation.
        dim = differing[0]
        result = xr.concat([cube1, _drop_aux_coords(cube2, cube1, dim)], dim=dim, coords="minimal", compat="override", join="exact", combine_attrs="override")
        if dimension_type(cube1, dim) in ("temporal", "spatial"):
            result = result.sortby(dim, ascending=not (cube1.indexes[dim].is_monotonic_decreasing and len(cube1.indexes[dim]) > 1))
        return _with_attrs(result, cube1)
    first = cube1.reindex(unions) if differing else cube1
    second = cube2.reindex(unions) if differing else cube2
    base = first.fillna(second) if differing else first
    if not overlap:
        return _with_attrs(base, cube1)
    overlap_selection = {d: intersections[d] for d in differing}
    resolved = overlap_resolver(x=cube1.sel(overlap_selection), y=cube2.sel(overlap_selection), context=context)
    resolved = like_cube(resolved, cube1.sel(overlap_selection))
    if not differing:
        return _with_attrs(resolved, cube1)
    inside = None
    for dim in differing:
        member = xr.DataArray(unions[dim].isin(intersections[dim]), dims=[dim], coords={dim: unions[dim]})
        inside = member if inside is None else inside & member
    result = xr.where(inside, resolved.reindex(unions), base)
    return _with_attrs(result.transpose(*cube1.dims), cube1)


def _drop_aux_coords(cube: xr.DataArray, like: xr.DataArray, dim: str) -> xr.DataArray:
    """Give ``cube`` exactly the auxiliary coordinates along ``dim`` that ``like`` has, so they concatenate."""
    for name, coord in like.coords.items():
        if name != dim and coord.dims == (dim,) and name not in cube.coords:
            fill = "" if coord.dtype.kind in "UOS" else np.nan
            cube = cube.assign_coords({name: (dim, np.full(cube.sizes[dim], fill, dtype=object))})
    extra = [name for name, coord in cube.coords.items() if name != dim and dim in coord.dims and name not in like.coords]
    return cube.drop_vars(extra)


def _with_attrs(result: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    for name, coord in like.coords.items():
        if name not in result.coords and set(coord.dims) <= set(result.dims) and not coord.dims:
            result = result.assign_coords({name: coord})
    result.attrs = cube_attrs(like)
    return result


def _merge_lower_dimensional(cube1: xr.DataArray, cube2: xr.DataArray, overlap_resolver: Any, context: Any) -> xr.DataArray:
    """A cube merged with one that lacks some of its dimensions: every value overlaps (spec example 4)."""
    higher, lower = (cube1, cube2) if set(cube2.dims) < set(cube1.dims) else (cube2, cube1)
    if not set(lower.dims) < set(higher.dims):
        raise ProcessError(
            "IncompatibleDataCubes",
            f"The cubes' dimensions can't be merged: {list(cube1.dims)} and {list(cube2.dims)}; one must contain the other's.",
        )
    if overlap_resolver is None:
        raise ProcessError("OverlapResolverMissing", "The lower-dimensional cube overlaps every value of the other; give an overlap_resolver.")
    lower = _check_same_labels(higher, lower, "lower-dimensional cube")
    lower = lower.drop_vars([c for c in lower.coords if c not in lower.dims])
    x, y = (higher, lower) if higher is cube1 else (lower, higher)
    return like_cube(overlap_resolver(x=x, y=y, context=context), higher)
