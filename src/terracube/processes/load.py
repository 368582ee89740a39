"""load_collection: search a collection's scenes and read them lazily onto the requested grid.

``load_from_source`` is the one path from a STAC source to a cube; ``load_stac`` takes it too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from terracube.data.crs import item_crs, shared_crs, utm_crs
from terracube.data.grid import bounds_in, geobox_for_extent, grid_window
from terracube.data.chunks import chunk_edge
from terracube.data.load import load_items, read_options
from terracube.data.properties import conditions, matches
from terracube.errors import BandFilterNotFound, NoDataAvailable, PayloadTooLarge, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv


def parse_instant(value: str | None) -> datetime | None:
    """A temporal extent's bound as a UTC datetime; one that is no date is the user's error, not ours.

    Validation refuses literal bad dates up front; a date that arrives through a parameter at run
    time ends here.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ProcessParameterInvalid(f"temporal_extent: {str(value)[:100]!r} is not a date or date-time (RFC 3339).") from None
    if stamp is pd.NaT:
        raise ProcessParameterInvalid(f"temporal_extent: {str(value)[:100]!r} is not a date or date-time (RFC 3339).")
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
    _check_extent(spatial_extent)
    _check_bands(source, bands)
    bands = list(bands) if bands else source.band_names
    bbox, start, end = request_window(spatial_extent, temporal_extent)
    if env.grid is not None:
        geobox, bbox = tile_window(env.grid, spatial_extent)
    items = find_items(source, bbox, start, end, properties, temporal_extent)
    if env.grid is None:
        geobox = request_grid(source, items, spatial_extent, bbox, bands)
    check_size(env, len(items), bands, geobox)
    env.logger.info("load %s: %d scenes, %d bands, %s pixels in %s", source.id, len(items), len(bands), geobox.shape, geobox.crs)
    return read_cube(source, items, {band: source.asset_key(band) for band in bands}, geobox, env)


def request_window(spatial_extent, temporal_extent):
    """The WGS84 box (None: anywhere) and the half-open time interval [start, end) of a load."""
    start, end = (None, None)
    if temporal_extent is not None:
        start, end = (parse_instant(temporal_extent[0]), parse_instant(temporal_extent[1]))
        if start is not None and end is not None and start >= end:
            raise ProcessParameterInvalid(f"temporal_extent: the start {temporal_extent[0]} is not before the end {temporal_extent[1]}.")
    bbox = bounds_in(spatial_extent, "EPSG:4326") if spatial_extent else None
    return bbox, start, end


def tile_window(grid, spatial_extent):
    """A map tile's load (``ProcessEnv.grid``): the tile's pixels within the load's extent, and their WGS84 box."""
    window = grid_window(grid, spatial_extent)
    if window is None:
        raise NoDataAvailable("The requested area does not overlap this map tile.")
    return window, bounds_in(
        {"west": window.boundingbox[0], "south": window.boundingbox[1], "east": window.boundingbox[2], "north": window.boundingbox[3],
         "crs": str(window.crs)}, "EPSG:4326")


def find_items(source, bbox, start, end, properties, temporal_extent) -> list:
    items = source.search(bbox, start, end, conditions(properties) if properties else None)
    if properties:
        # The STAC search narrows where it can; the callbacks decide, item by item.
        items = [item for item in items if matches(item.properties, properties)]
    if not items:
        raise NoDataAvailable(
            f"No scenes of '{source.id}' intersect the requested area"
            + (f" {[round(v, 5) for v in bbox]}" if bbox else "")
            + f" between {temporal_extent[0] if temporal_extent else '-'} and {temporal_extent[1] if temporal_extent else '-'}"
            + (" with the requested properties" if properties else "") + "."
        )
    return items


def request_grid(source, items, spatial_extent, bbox, bands):
    """The grid a load lands on: the extent (or the scenes' union) in the collection's native CRS,
    or the CRS the scenes share, or the UTM zone of the centre; at the finest requested band's resolution."""
    crs = source.native_crs or shared_crs(items)
    extent = spatial_extent or _items_extent(items, crs)
    crs = crs or utm_crs(bbox or bounds_in(extent, "EPSG:4326"))
    # Bands at 20 and 60 m are resampled onto the finest requested band's grid.
    resolution = min(source.band_resolution(band) for band in bands)
    return geobox_for_extent(extent, crs, resolution)


def check_size(env: ProcessEnv, scenes: int, bands: list, geobox) -> None:
    """Refuse a synchronous load over the pixel limit; count what a load will read (the request's usage)."""
    pixels = len(bands) * scenes * geobox.shape[0] * geobox.shape[1]
    if env.max_pixels is not None and pixels > env.max_pixels:
        raise PayloadTooLarge(
            f"This request would read {pixels:,} pixels ({scenes} scenes x {len(bands)} bands x "
            f"{geobox.shape[1]} x {geobox.shape[0]}), more than the {env.max_pixels:,} allowed for synchronous "
            "processing. Use a smaller extent, or run it as a batch job (POST /jobs)."
        )
    env.usage.count_pixels(pixels)


def read_cube(source, items, assets: dict[str, str], geobox, env: ProcessEnv):
    """The lazy cube of ``assets`` ({band: asset key}) of ``items`` on ``geobox``, read as the source says."""
    bands = list(assets)
    chunk = chunk_edge(env.settings, scenes=len(items), bands=len(bands), shape=tuple(geobox.shape.yx))
    config = source.config
    harmonize = {assets[band] for band in bands if source.is_reflectance(band)} if config and config.harmonize_baseline else set()
    nodata = {assets[band]: source.band_nodata(band) for band in bands if source.band_nodata(band) is not None}
    options = read_options(config, env.settings, label=source.id, harmonize_assets=harmonize, nodata=nodata,
                           guard=getattr(source, "guard", None))  # load_stac's user URL: its assets through the fetch guard
    resolutions = {band: source.band_resolution(band) for band in bands}
    cube = load_items(items, assets, geobox, chunk, options, resolutions=resolutions, warp=env.grid is not None, eager=env.eager)
    # ndvi's defaults ("nir", "red") and filter_bands by common name resolve through this map.
    cube.attrs["common_names"] = {
        meta["common_name"]: meta["name"] for meta in source.band_metadata if meta.get("common_name") and meta["name"] in bands
    }
    return cube


def _items_extent(items, crs: str | None) -> dict:
    """Without a spatial extent, a load covers the scenes it found (not the collection's whole extent).

    In the scenes' own CRS when they give their ``proj:bbox`` there: a WGS84 box reprojected back
    would grow the grid, so ``load_stac`` of a job's result would not give back the result's grid.
    """
    native = [_proj_bbox(item) for item in items] if crs else []
    if native and all(box is not None and item_crs(item) == str(crs).upper() for box, item in zip(native, items)):
        west, south = min(b[0] for b in native), min(b[1] for b in native)
        east, north = max(b[2] for b in native), max(b[3] for b in native)
        return {"west": west, "south": south, "east": east, "north": north, "crs": crs}
    boxes = [item.bbox for item in items if item.bbox]
    if not boxes:
        raise ProcessParameterInvalid("The scenes found have no bounding box: give a spatial_extent.")
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return {"west": west, "south": south, "east": east, "north": north, "crs": 4326}


def _proj_bbox(item) -> list[float] | None:
    """The item's ``proj:bbox`` (item level, or the union over its assets)."""
    if item.properties.get("proj:bbox"):
        return item.properties["proj:bbox"]
    boxes = [asset.extra_fields["proj:bbox"] for asset in item.assets.values() if asset.extra_fields.get("proj:bbox")]
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


load_collection.check_arguments = check_arguments  # type: ignore[attr-defined]
