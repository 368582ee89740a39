"""Geometries as the vector processes take them, and where they fall on a cube's pixel grid.

Geometries arrive as GeoJSON (a geometry, a Feature or a FeatureCollection; WGS84 as GeoJSON says,
unless a legacy ``crs`` member names another), or as a vector data cube: a DataArray whose
``geometry`` dimension holds shapely geometries indexed by xvec (with its CRS). Either way they
become a ``Geometries``: shapely geometries, their CRS and the features' properties.

Pixels follow the spec's rules: a polygon takes the pixels whose centre it contains, a point its
nearest pixel, a line the pixels it touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import shapely.geometry
import xarray as xr
from pyproj import CRS, Transformer
from rasterio import features

from terracube.cube import DIM_GEOMETRY, crs_of, is_vector_cube
from terracube.errors import ProcessParameterInvalid
from terracube.processes.cubes_apply import spatial_dims

GEOMETRY_DIM = DIM_GEOMETRY
WGS84 = CRS.from_epsg(4326)


@dataclass
class Geometries:
    shapes: list  # shapely geometries (possibly empty)
    crs: CRS = WGS84
    properties: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.shapes)

    def to_crs(self, crs: Any) -> list:
        target = CRS.from_user_input(crs)
        if target == self.crs:
            return list(self.shapes)
        project = Transformer.from_crs(self.crs, target, always_xy=True).transform

        def reproject(coordinates: np.ndarray) -> np.ndarray:  # (n, 2) or (n, 3) columns x, y[, z]
            return np.column_stack(project(*coordinates.T))

        # shapely.transform hands all coordinates over at once; z is kept where a geometry has one.
        return [shape if shape.is_empty else shapely.transform(shape, reproject, include_z=bool(shape.has_z)) for shape in self.shapes]


def _geojson_crs(document: dict) -> CRS:
    crs = document.get("crs")
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict) and crs["properties"].get("name"):
        return CRS.from_user_input(crs["properties"]["name"])
    return WGS84


def geometries_from(value: Any, parameter: str = "geometries") -> Geometries:
    """GeoJSON or a vector cube as ``Geometries``; anything else is ``ProcessParameterInvalid``."""
    if is_vector_cube(value):
        shapes = list(value.indexes[GEOMETRY_DIM]) if GEOMETRY_DIM in value.indexes else list(value[GEOMETRY_DIM].values)
        crs = getattr(value.xindexes.get(GEOMETRY_DIM), "crs", None) or value.attrs.get("crs") or WGS84
        properties = list(value.attrs.get("properties") or [{} for _ in shapes])
        return Geometries(shapes, CRS.from_user_input(crs), properties)
    if hasattr(value, "geometry") and hasattr(value, "crs"):  # a GeoDataFrame
        return Geometries(list(value.geometry), CRS.from_user_input(value.crs or WGS84), value.drop(columns="geometry").to_dict("records"))
    if not isinstance(value, dict) or "type" not in value:
        raise ProcessParameterInvalid(f"'{parameter}' must be GeoJSON or a vector data cube, got {type(value).__name__}.")
    crs = _geojson_crs(value)
    kind = value["type"]
    try:
        if kind == "FeatureCollection":
            items = value.get("features") or []
            shapes = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else shapely.geometry.Polygon() for f in items]
            return Geometries(shapes, crs, [dict(f.get("properties") or {}) for f in items])
        if kind == "Feature":
            shape = shapely.geometry.shape(value["geometry"]) if value.get("geometry") else shapely.geometry.Polygon()
            return Geometries([shape], crs, [dict(value.get("properties") or {})])
        if kind == "GeometryCollection":
            raise ProcessParameterInvalid(f"'{parameter}': a GeoJSON GeometryCollection is not supported; use a FeatureCollection.")
        return Geometries([shapely.geometry.shape(value)], crs, [{}])
    except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as error:
        raise ProcessParameterInvalid(f"'{parameter}' is not valid GeoJSON: {error}") from error


def require_polygons(geometries: Geometries, parameter: str) -> None:
    for shape in geometries.shapes:
        if not shape.is_empty and shape.geom_type not in ("Polygon", "MultiPolygon"):
            raise ProcessParameterInvalid(f"'{parameter}' must hold polygons, got a {shape.geom_type}.")


# --- pixels ---------------------------------------------------------------------------------


def grid(data: xr.DataArray) -> tuple[str, str, Any, tuple[int, int], Any]:
    """(y dim, x dim, CRS, shape, affine transform) of a cube's pixel grid."""
    y, x = spatial_dims(data)
    crs = crs_of(data)
    if crs is None:
        raise ProcessParameterInvalid("The cube has no spatial reference system, so geometries can't be placed on it.")
    geobox = data.transpose(..., y, x).odc.geobox
    return y, x, crs, (data.sizes[y], data.sizes[x]), geobox.affine


def pixel_mask(shape_: Any, out_shape: tuple[int, int], transform: Any) -> np.ndarray:
    """Boolean pixels of one geometry (in the grid's CRS): centres in polygons, nearest for points, touched by lines."""
    if shape_.is_empty:
        return np.zeros(out_shape, dtype=bool)
    kind = shape_.geom_type
    if kind in ("Point", "MultiPoint"):
        mask = np.zeros(out_shape, dtype=bool)
        inverse = ~transform
        for point in getattr(shape_, "geoms", [shape_]):
            # The inverse transform written out: affine 3 deprecates ``*`` on points, affine 2 has no ``@``.
            col = inverse.a * point.x + inverse.b * point.y + inverse.c
            row = inverse.d * point.x + inverse.e * point.y + inverse.f
            row, col = int(np.floor(row)), int(np.floor(col))
            if 0 <= row < out_shape[0] and 0 <= col < out_shape[1]:
                mask[row, col] = True
        return mask
    touched = kind in ("LineString", "MultiLineString", "LinearRing")
    return features.geometry_mask([shape_], out_shape=out_shape, transform=transform, invert=True, all_touched=touched)


def masks_on(data: xr.DataArray, geometries: Geometries) -> tuple[str, str, list[np.ndarray]]:
    """(y dim, x dim, one boolean pixel mask per geometry) on the cube's grid."""
    y, x, crs, out_shape, transform = grid(data)
    shapes = geometries.to_crs(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    return y, x, [pixel_mask(s, out_shape, transform) for s in shapes]


def as_mask_array(mask: np.ndarray, data: xr.DataArray, y: str, x: str) -> xr.DataArray:
    return xr.DataArray(mask, dims=(y, x), coords={y: data.indexes[y], x: data.indexes[x]})
