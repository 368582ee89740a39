"""load_collection: search a collection's scenes and read them lazily onto the requested grid."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from terracube.data.grid import bounds_in, geobox_for_extent
from terracube.data.load import load_items
from terracube.errors import BandFilterNotFound, NoDataAvailable, PayloadTooLarge, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert(timezone.utc).to_pydatetime()


def _check_extent(spatial_extent: Any) -> None:
    if spatial_extent is None:
        return
    if not isinstance(spatial_extent, dict) or not {"west", "south", "east", "north"} <= set(spatial_extent):
        raise ProcessParameterInvalid(
            "spatial_extent must be a bounding box {west, south, east, north, crs} or null; GeoJSON comes with filter_spatial."
        )
    if spatial_extent["west"] >= spatial_extent["east"] or spatial_extent["south"] >= spatial_extent["north"]:
        raise ProcessParameterInvalid("spatial_extent: west must be less than east and south less than north.")


def _check_bands(source, bands: list[str] | None) -> None:
    if bands is None:
        return
    unknown = [band for band in bands if band not in source.band_names]
    if unknown:
        raise BandFilterNotFound(
            f"The bands {unknown} are not in collection '{source.id}'. Available: {', '.join(source.band_names)}."
        )


def check_arguments(arguments: dict[str, Any], env: ProcessEnv) -> None:
    """Cheap checks before anything runs: collection, bands, extent shapes."""
    if isinstance(arguments.get("id"), str):
        source = env.catalog.get(arguments["id"])
        if isinstance(arguments.get("bands"), list):
            _check_bands(source, arguments["bands"])
    if "spatial_extent" in arguments:
        _check_extent(arguments["spatial_extent"])


def load_collection(
    id: str,
    spatial_extent: dict | None = None,
    temporal_extent: list | None = None,
    bands: list[str] | None = None,
    properties: dict | None = None,
    *,
    env: ProcessEnv,
):
    source = env.catalog.get(id)
    _check_extent(spatial_extent)
    _check_bands(source, bands)
    bands = list(bands) if bands else source.band_names

    start, end = (None, None)
    if temporal_extent is not None:
        start, end = (_instant(temporal_extent[0]), _instant(temporal_extent[1]))
        if start is not None and end is not None and start >= end:
            raise ProcessParameterInvalid(f"temporal_extent: the start {temporal_extent[0]} is not before the end {temporal_extent[1]}.")
    extent = spatial_extent or _collection_extent(source)
    bbox = bounds_in(extent, "EPSG:4326")
    items = source.search(bbox, start, end)
    if properties:
        items = [item for item in items if _matches(item, properties)]
    if not items:
        raise NoDataAvailable(
            f"No scenes of '{id}' intersect the requested area {[round(v, 5) for v in bbox]}"
            f" between {temporal_extent[0] if temporal_extent else '-'} and {temporal_extent[1] if temporal_extent else '-'}"
            + (" with the requested properties" if properties else "") + "."
        )

    # Bands at 20 and 60 m are resampled onto the finest requested band's grid.
    resolution = min(source.band_resolution(band) for band in bands)
    geobox = geobox_for_extent(extent, source.native_crs, resolution)
    pixels = len(bands) * len(items) * geobox.shape[0] * geobox.shape[1]
    if env.max_pixels is not None and pixels > env.max_pixels:
        raise PayloadTooLarge(
            f"This request would read {pixels:,} pixels ({len(items)} scenes x {len(bands)} bands x "
            f"{geobox.shape[1]} x {geobox.shape[0]}), more than the {env.max_pixels:,} allowed for synchronous "
            "processing. Use a smaller extent, or run it as a batch job (POST /jobs)."
        )
    env.logger.info("load_collection %s: %d scenes, %d bands, %s pixels", id, len(items), len(bands), geobox.shape)
    chunk = env.settings.chunk_size if env.settings is not None else 1024
    cube = load_items(items, bands, geobox, chunk)
    # ndvi's defaults ("nir", "red") and filter_bands by common name resolve through this map.
    cube.attrs["common_names"] = {
        meta["common_name"]: meta["name"] for meta in source.band_metadata if meta.get("common_name") and meta["name"] in bands
    }
    return cube


load_collection.check_arguments = check_arguments  # type: ignore[attr-defined]


def _collection_extent(source) -> dict:
    west, south, east, north = source.ensure_loaded().extent.spatial.bboxes[0]
    return {"west": west, "south": south, "east": east, "north": north, "crs": 4326}


def _matches(item, properties: dict) -> bool:
    """Each property condition is a callback with parameter ``value``; all must hold."""
    for name, condition in properties.items():
        value = item.properties.get(name)
        if value is None or not condition(value=value):
            return False
    return True
