"""What a job produced, described on the worker right after writing, while the files are local.

Each file becomes a STAC asset: media type, roles, ``file:size``, and for rasters the projection
(``proj:epsg``, ``proj:bbox``, ``proj:shape``, ``proj:transform``) and per band ``raster:bands``
with statistics from a decimated read (the COG's overviews: cheap, and marked approximate). The
source items a job read are found again by repeating the ``load_collection`` searches, which on
a static catalog costs microseconds.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("terracube.jobs")

STATS_EDGE = 512  # statistics are computed on at most a 512 x 512 decimated read per band
MAX_DERIVED_FROM = 1000


def describe_file(path: Path, name: str, media_type: str) -> dict[str, Any]:
    asset: dict[str, Any] = {"name": name, "type": media_type, "roles": ["data"], "title": name, "file:size": path.stat().st_size}
    if name.endswith(".skops"):
        # load_ml_model finds the model of a job's results by this role (STAC ml-model extension).
        asset["roles"] = ["ml-model:checkpoint"]
    if media_type.startswith("image/tiff") or name.endswith((".tif", ".tiff")):
        try:
            asset.update(_raster_metadata(path))
        except Exception as error:  # a file we wrote but cannot read back is worth a warning, not a failure
            log.warning("could not read back %s: %s", name, error)
    return asset


def _raster_metadata(path: Path) -> dict[str, Any]:
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        meta: dict[str, Any] = {"proj:shape": [src.height, src.width], "proj:bbox": list(src.bounds), "proj:transform": list(src.transform)[:6]}
        epsg = src.crs.to_epsg() if src.crs else None
        meta["proj:epsg"] = epsg
        if src.crs is not None and epsg is None:
            meta["proj:wkt2"] = src.crs.to_wkt()
        if src.crs is not None:
            meta["bbox_wgs84"] = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))
        bands = []
        scale = max(src.height, src.width) / STATS_EDGE
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale))) if scale > 1 else (src.height, src.width)
        for index in range(1, src.count + 1):
            band: dict[str, Any] = {"data_type": src.dtypes[index - 1]}
            if src.nodata is not None and not (isinstance(src.nodata, float) and math.isnan(src.nodata)):
                band["nodata"] = src.nodata
            elif src.nodata is not None:
                band["nodata"] = "nan"
            description = src.descriptions[index - 1]
            if description:
                band["name"] = description
            band["statistics"] = _statistics(src.read(index, out_shape=shape, masked=True), approximate=scale > 1)
            bands.append(band)
        meta["raster:bands"] = bands
    return meta


def _statistics(data: np.ma.MaskedArray, approximate: bool) -> dict[str, Any]:
    values = np.ma.masked_invalid(data.astype("float64")) if np.issubdtype(data.dtype, np.floating) else data.astype("float64")
    valid = values.compressed()
    stats: dict[str, Any] = {"valid_percent": round(100.0 * valid.size / max(values.size, 1), 3)}
    if valid.size:
        stats.update(minimum=float(valid.min()), maximum=float(valid.max()), mean=float(valid.mean()), stddev=float(valid.std()))
    if approximate:
        stats["approximate"] = True
    return stats


def derived_from(process: dict, catalog: Any) -> list[dict[str, Any]]:
    """The STAC items each top-level ``load_collection`` read: ``[{"href", "collection", "datetime"}]``.

    Searches are repeated with the node's literal arguments, literal as the evaluator sees them; a
    node whose extents come from elsewhere (a node, a parameter, a callback), or that filters on
    ``properties``, is left out rather than guessed.
    """
    from terracube.data.grid import bounds_in
    from terracube.graph.model import contains_reference
    from terracube.processes.load import parse_instant

    found: dict[str, dict[str, Any]] = {}
    for node in (process.get("process_graph") or {}).values():
        if not isinstance(node, dict) or node.get("process_id") != "load_collection":
            continue
        arguments = node.get("arguments") or {}
        extent, period = arguments.get("spatial_extent"), arguments.get("temporal_extent")
        if arguments.get("properties") or not isinstance(arguments.get("id"), str) or contains_reference(extent) or contains_reference(period):
            continue
        try:
            source = catalog.get(arguments["id"])
            bbox = bounds_in(extent, "EPSG:4326") if extent else None
            start, end = (parse_instant(period[0]), parse_instant(period[1])) if period else (None, None)
            items = source.search(bbox, start, end)
        except Exception as error:
            log.info("derived_from: could not repeat the search of %s: %s", arguments.get("id"), error)
            continue
        for item in items[:MAX_DERIVED_FROM]:
            href = item.get_self_href()
            if href and href not in found:
                if "://" not in href:
                    href = Path(href).resolve().as_uri()
                found[href] = {"href": href, "collection": arguments["id"], "datetime": item.datetime.isoformat() if item.datetime else None}
    return list(found.values())[:MAX_DERIVED_FROM]
