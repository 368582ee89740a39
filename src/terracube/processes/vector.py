"""Vector data cubes: load_geojson, filter_vector, vector_buffer, vector_reproject,
vector_to_regular_points, vector_to_random_points (all proposals).

A vector cube is a DataArray with a ``geometry`` dimension indexed by xvec (shapely geometries with
a CRS), as ``aggregate_spatial`` returns it; feature properties travel in ``attrs["properties"]``
(one dict per geometry). Without values (``load_geojson`` without ``properties``) the cube holds
no-data, one value per geometry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
import xarray as xr
from pyproj import CRS
from shapely.geometry import MultiPoint, Point

from terracube.cube import is_vector_cube
from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.aggregate_spatial import vector_cube
from terracube.processes.cubes_dimensions import with_types
from terracube.processes.geometries import GEOMETRY_DIM, Geometries, geometries_from


def _cube(geometries: Geometries, values: xr.DataArray | None = None) -> xr.DataArray:
    if values is None:
        values = xr.DataArray(np.full(len(geometries), np.nan, dtype="float32"), dims=[GEOMETRY_DIM])
    return vector_cube(with_types(values, {GEOMETRY_DIM: "geometry", **{d: "other" for d in values.dims if d != GEOMETRY_DIM}}), geometries)


def _replace_geometries(data: Any, shapes: list, crs: Any = None, parameter: str = "data") -> xr.DataArray:
    """``data`` (a vector cube or GeoJSON) with new geometries, values and properties kept."""
    source = geometries_from(data, parameter)
    result = Geometries(shapes, CRS.from_user_input(crs) if crs is not None else source.crs, source.properties)
    if is_vector_cube(data):
        values = data.drop_vars([GEOMETRY_DIM])
        cube = _cube(result, values)
        cube.attrs["properties"] = data.attrs.get("properties", result.properties)
        return cube
    return _cube(result)


def load_geojson(data: dict, properties: list | None = None) -> xr.DataArray:
    geometries = geometries_from(data, "data")
    names = list(properties or [])
    if not names:
        return _cube(geometries)
    table = [[_number(p.get(name)) for name in names] for p in geometries.properties]
    values = xr.DataArray(np.array(table, dtype=float).reshape(len(geometries), len(names)), dims=[GEOMETRY_DIM, "properties"], coords={"properties": np.array(names, dtype=object)})
    return _cube(geometries, values)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


_RELATIONS = {"intersects", "disjoint", "equals", "touches", "crosses", "overlaps", "contains", "within"}


def filter_vector(data: Any, geometries: Any, relation: str = "intersects") -> xr.DataArray:
    if relation not in _RELATIONS:
        raise ProcessParameterInvalid(f"'relation' must be one of {', '.join(sorted(_RELATIONS))}, got {relation!r}.")
    candidates = geometries_from(data, "data")
    base = shapely.union_all([g for g in geometries_from(geometries).to_crs(candidates.crs) if not g.is_empty])
    keep = [i for i, g in enumerate(candidates.shapes) if not g.is_empty and getattr(g, relation)(base)]
    if is_vector_cube(data):
        result = data.isel({GEOMETRY_DIM: keep})
        result.attrs["properties"] = [data.attrs.get("properties", [{}] * len(candidates))[i] for i in keep]
        return result
    return _cube(Geometries([candidates.shapes[i] for i in keep], candidates.crs, [candidates.properties[i] for i in keep]))


def _require_metres(crs: CRS) -> None:
    units = {axis.unit_name for axis in crs.axis_info}
    if not units or not units <= {"metre", "meter", "m"}:
        raise ProcessError("UnitMismatch", f"The geometries' CRS ({crs.name}) is not in metres; reproject them with vector_reproject first.")


def vector_buffer(geometries: Any, distance: float) -> xr.DataArray:
    source = geometries_from(geometries)
    _require_metres(source.crs)
    if not distance:
        raise ProcessParameterInvalid("'distance' must not be 0.")
    return _replace_geometries(geometries, [g if g.is_empty else g.buffer(float(distance)) for g in source.shapes], parameter="geometries")


def vector_reproject(data: Any, projection: Any, dimension: str | None = None) -> xr.DataArray:
    if dimension is not None and (not is_vector_cube(data) or dimension not in data.dims):
        raise ProcessError("DimensionNotAvailable", f"The vector cube has no dimension '{dimension}'.")
    crs = CRS.from_user_input(f"EPSG:{projection}" if isinstance(projection, int) else projection)
    return _replace_geometries(data, geometries_from(data, "data").to_crs(crs), crs)


def _regular_points(shape: Any, distance: float) -> list:
    if shape.is_empty:
        return []
    if shape.geom_type in ("Point", "MultiPoint"):
        return list(getattr(shape, "geoms", [shape]))
    if shape.geom_type in ("LineString", "MultiLineString", "LinearRing"):
        points = []
        for line in getattr(shape, "geoms", [shape]):
            count = int(math.floor(line.length / distance)) + 1
            points += [line.interpolate(i * distance) for i in range(count)]
        return points
    left, bottom, right, top = shape.bounds
    xs = left + distance / 2 + distance * np.arange(max(1, math.ceil((right - left) / distance)))
    ys = top - distance / 2 - distance * np.arange(max(1, math.ceil((top - bottom) / distance)))
    candidates = shapely.points(*[a.ravel() for a in np.meshgrid(xs, ys)])
    return [p for p in candidates if shape.contains(p)]


def _points_cube(data: Any, per_geometry: list[list], group: bool) -> xr.DataArray:
    source = geometries_from(data, "data")
    if group:
        return _cube(Geometries([MultiPoint(points) if points else MultiPoint() for points in per_geometry], source.crs, source.properties))
    flat = [(point, source.properties[i]) for i, points in enumerate(per_geometry) for point in points]
    return _cube(Geometries([p for p, _ in flat], source.crs, [props for _, props in flat]))


def vector_to_regular_points(data: Any, distance: float, group: bool = True) -> xr.DataArray:
    source = geometries_from(data, "data")
    _require_metres(source.crs)
    if not distance or distance <= 0:
        raise ProcessParameterInvalid("'distance' must be greater than 0.")
    return _points_cube(data, [_regular_points(g, float(distance)) for g in source.shapes], group)


def vector_to_random_points(data: Any, geometry_count: int | None = None, total_count: int | None = None, group: bool = True, seed: int | None = None) -> xr.DataArray:
    source = geometries_from(data, "data")
    usable = [i for i, g in enumerate(source.shapes) if not g.is_empty]
    if total_count is not None and total_count < len(usable):
        raise ProcessError("CountMismatch", f"'total_count' ({total_count}) is less than the number of geometries ({len(usable)}).")
    rng = np.random.default_rng(seed)
    per = geometry_count or 1
    if total_count is not None and geometry_count is None:
        per = max(1, total_count // max(1, len(usable)))
    points: list[list] = [[] for _ in source.shapes]
    for i in usable:
        points[i] = _random_points(source.shapes[i], per, rng)
    if total_count is not None:
        budget = total_count
        for i in usable:
            points[i] = points[i][: max(1, min(len(points[i]), budget))]
            budget -= len(points[i])
    return _points_cube(data, points, group)


def _random_points(shape: Any, count: int, rng: np.random.Generator) -> list:
    if shape.geom_type in ("Point", "MultiPoint"):
        options = list(getattr(shape, "geoms", [shape]))
        return [options[i] for i in rng.permutation(len(options))[:count]]
    if shape.geom_type in ("LineString", "MultiLineString", "LinearRing"):
        return [shape.interpolate(float(rng.uniform(0, shape.length))) for _ in range(count)]
    left, bottom, right, top = shape.bounds
    found: list = []
    for _ in range(1000):
        xs, ys = rng.uniform(left, right, 4 * count), rng.uniform(bottom, top, 4 * count)
        found += [p for p in shapely.points(xs, ys) if shape.contains(p)]
        if len(found) >= count:
            break
    return found[:count] or [shape.representative_point()]


__all__ = ["load_geojson", "filter_vector", "vector_buffer", "vector_reproject", "vector_to_regular_points", "vector_to_random_points", "Point"]
