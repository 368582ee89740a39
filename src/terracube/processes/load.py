"""load_collection: search a collection's scenes and read them lazily onto the requested grid."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd
from odc.stac import configure_rio

from terracube.data.grid import bounds_in, geobox_for_extent
from terracube.data.load import gdal_environment, load_items
from terracube.data.signing import url_signer
from terracube.errors import BandFilterNotFound, NoDataAvailable, PayloadTooLarge, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv


def parse_instant(value: str | None) -> datetime | None:
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
    return load_from_source(env.catalog.get(id), spatial_extent, temporal_extent, bands, properties, env)


def load_from_source(source, spatial_extent, temporal_extent, bands, properties, env: ProcessEnv):
    """Search a source's scenes and read them lazily onto the request grid (load_collection, load_stac)."""
    id = source.id
    _check_extent(spatial_extent)
    _check_bands(source, bands)
    bands = list(bands) if bands else source.band_names

    start, end = (None, None)
    if temporal_extent is not None:
        start, end = (parse_instant(temporal_extent[0]), parse_instant(temporal_extent[1]))
        if start is not None and end is not None and start >= end:
            raise ProcessParameterInvalid(f"temporal_extent: the start {temporal_extent[0]} is not before the end {temporal_extent[1]}.")
    extent = spatial_extent or _collection_extent(source)
    bbox = bounds_in(extent, "EPSG:4326")
    items = source.search(bbox, start, end, stac_query(properties) if properties else None)
    if properties:
        # The STAC query narrows the search where it can; the callbacks decide, item by item.
        items = [item for item in items if _matches(item, properties)]
    if not items:
        raise NoDataAvailable(
            f"No scenes of '{id}' intersect the requested area {[round(v, 5) for v in bbox]}"
            f" between {temporal_extent[0] if temporal_extent else '-'} and {temporal_extent[1] if temporal_extent else '-'}"
            + (" with the requested properties" if properties else "") + "."
        )

    # Bands at 20 and 60 m are resampled onto the finest requested band's grid.
    resolution = min(source.band_resolution(band) for band in bands)
    geobox = geobox_for_extent(extent, source.native_crs or utm_crs(bbox), resolution)
    pixels = len(bands) * len(items) * geobox.shape[0] * geobox.shape[1]
    if env.max_pixels is not None and pixels > env.max_pixels:
        raise PayloadTooLarge(
            f"This request would read {pixels:,} pixels ({len(items)} scenes x {len(bands)} bands x "
            f"{geobox.shape[1]} x {geobox.shape[0]}), more than the {env.max_pixels:,} allowed for synchronous "
            "processing. Use a smaller extent, or run it as a batch job (POST /jobs)."
        )
    env.logger.info("load_collection %s: %d scenes, %d bands, %s pixels", id, len(items), len(bands), geobox.shape)
    chunk = env.settings.chunk_size if env.settings is not None else 1024
    config = source.config
    if config is not None and (config.gdal_options or config.credentials):
        configure_rio(cloud_defaults=True, **gdal_environment(config.gdal_options, config.credentials))
    harmonize = {band for band in bands if source.is_reflectance(band)} if config and config.harmonize_baseline else set()
    cube = load_items(
        items,
        {band: source.asset_key(band) for band in bands},
        geobox,
        chunk,
        harmonize=harmonize,
        patch_url=url_signer(config.sign) if config and config.sign else None,
        resolutions={band: source.band_resolution(band) for band in bands},
    )
    # ndvi's defaults ("nir", "red") and filter_bands by common name resolve through this map.
    cube.attrs["common_names"] = {
        meta["common_name"]: meta["name"] for meta in source.band_metadata if meta.get("common_name") and meta["name"] in bands
    }
    return cube


def _collection_extent(source) -> dict:
    west, south, east, north = source.ensure_loaded().extent.spatial.bboxes[0]
    return {"west": west, "south": south, "east": east, "north": north, "crs": 4326}


_STAC_OPERATORS = {"eq": "eq", "neq": "neq", "lt": "lt", "lte": "lte", "gt": "gt", "gte": "gte"}


def stac_query(properties: dict) -> dict | None:
    """Translate simple property conditions (``lte(value, 20)``) into a STAC API ``query``."""
    query: dict = {}
    for name, condition in properties.items():
        graph = getattr(condition, "graph", None)
        if graph is None or len(graph.nodes) != 1:
            continue
        node = graph.result_node
        operator = _STAC_OPERATORS.get(node.process_id)
        arguments = node.arguments
        if operator and arguments.get("x") == {"from_parameter": "value"} and isinstance(arguments.get("y"), (int, float, str)):
            query.setdefault(name, {})[operator] = arguments["y"]
    return query or None


def utm_crs(bbox: tuple[float, float, float, float]) -> str:
    """The UTM zone of a WGS84 box's centre, for archives without one native CRS."""
    lon = (bbox[0] + bbox[2]) / 2
    lat = (bbox[1] + bbox[3]) / 2
    zone = int((lon + 180) // 6) + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _matches(item, properties: dict) -> bool:
    """Each property condition is a callback with parameter ``value``; all must hold."""
    for name, condition in properties.items():
        value = item.properties.get(name)
        if value is None or not condition(value=value):
            return False
    return True


load_collection.check_arguments = check_arguments  # type: ignore[attr-defined]
