"""Vector data cubes (aggregate_spatial's result) as GeoJSON, CSV and GeoParquet; GeoJSON files read.

A vector cube is a DataArray with a ``geometry`` dimension indexed by xvec. Each geometry becomes
one feature (one row); every other dimension is spread into columns named like the bands of a
GeoTIFF (``B04``, or ``2021-07-21_B04`` with a time dimension); the features' own properties come
first. GeoJSON is written in WGS84 as RFC 7946 requires; CSV carries the geometry as WKT in the
cube's CRS; GeoParquet keeps the CRS in its metadata.

GeoJSON files are read as the document they hold (several files as one FeatureCollection of all
their features); ``load_geojson`` makes that a vector cube, as it does with GeoJSON in a graph.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from terracube.cube import DIM_GEOMETRY as GEOMETRY_DIM
from terracube.cube import is_vector_cube
from terracube.errors import ProcessParameterInvalid


def to_geodataframe(cube: xr.DataArray, compute: dict | None = None) -> gpd.GeoDataFrame:
    """One row per geometry; ``compute``: the keyword arguments of ``dask.compute`` for the values."""
    if not is_vector_cube(cube):
        raise ProcessParameterInvalid("This format is for vector data cubes (e.g. the result of aggregate_spatial).")
    others = [dim for dim in cube.dims if dim != GEOMETRY_DIM]
    values = cube.transpose(GEOMETRY_DIM, *others).compute(**(compute or {})).values.reshape(cube.sizes[GEOMETRY_DIM], -1)
    columns = ["_".join(_label(cube, dim, label) for dim, label in zip(others, combination))
               for combination in itertools.product(*(range(cube.sizes[dim]) for dim in others))] or ["value"]
    properties = pd.DataFrame(cube.attrs.get("properties") or [{} for _ in range(cube.sizes[GEOMETRY_DIM])])
    table = pd.concat([properties.reset_index(drop=True), pd.DataFrame(values, columns=columns)], axis=1)
    crs = getattr(cube.xindexes.get(GEOMETRY_DIM), "crs", None)  # xvec's GeometryIndex knows it
    return gpd.GeoDataFrame(table, geometry=list(cube[GEOMETRY_DIM].values), crs=crs)


def _label(cube: xr.DataArray, dim: str, position: int) -> str:
    label = cube[dim].values[position] if dim in cube.coords else position
    if isinstance(label, np.datetime64):
        return str(np.datetime_as_string(label, unit="D"))
    return str(label)


def write_geojson(data, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    frame = to_geodataframe(data, compute)
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    path = directory / f"{options.get('filename_prefix', 'openEO')}.geojson"
    path.write_text(frame.to_json(na="null", drop_id=True), encoding="utf-8")
    return [path]


def write_csv(data, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    frame = to_geodataframe(data, compute)
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table.insert(0, "geometry", frame.geometry.to_wkt())
    path = directory / f"{options.get('filename_prefix', 'openEO')}.csv"
    table.to_csv(path, index=False)
    return [path]


def write_parquet(data, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    path = directory / f"{options.get('filename_prefix', 'openEO')}.parquet"
    to_geodataframe(data, compute).to_parquet(path)
    return [path]


def read_geojson(paths: list[Path]) -> dict:
    """The GeoJSON object of one file, or one FeatureCollection of the features of several."""
    documents = []
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or not isinstance(document.get("type"), str):
            raise ValueError(f"{path.name} holds JSON, but not a GeoJSON object")
        documents.append(document)
    if len(documents) == 1:
        return documents[0]
    features = []
    for document in documents:
        if document["type"] == "FeatureCollection":
            features.extend(document.get("features", []))
        elif document["type"] == "Feature":
            features.append(document)
        else:
            features.append({"type": "Feature", "geometry": document, "properties": {}})
    return {"type": "FeatureCollection", "features": features}
