"""Drawing a map service's tiles: the service's process graph, evaluated for one tile, as a picture.

A tile is the graph run through the one engine (``terracube.execute``) with every load put on the
tile's grid: ``ProcessEnv.grid`` is the tile in EPSG:3857 (morecantile's ``WebMercatorQuad``) at
the tile's pixel size, so each ``load_collection`` searches only the scenes under the tile and
reads only its pixels, warped onto the tile (nearest neighbour, from the COGs' overviews: ``data/warped.py``).
The graph sees the tile as process parameters (``services/types.py``); the grid is ``services/grid.py``. What the graph gives must
be a raster cube of one band (drawn through a colormap) or three (red, green, blue); a cube that
still has several dates is drawn at the date asked for (WMTS's TIME), else at its latest date.

The graph is validated and planned once per service version (``_prepared``). Tiles outside the
layer's extent are empty at once, without evaluating anything; zoom levels where a tile would
cover more source pixels than ``tile_max_source_pixels`` are refused; drawn tiles go into the disk
cache and the hottest into memory (``services/cache.py``), so a tile is drawn once per service
version and style.

A tile's loads read their pixels at once (``ProcessEnv.eager``): its processes then work on
numpy-backed cubes, the same processes on the same graph, without building dask graphs that would
cost more than the tile's 256 x 256 pixels. The probe that describes a layer stays lazy and reads nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from terracube.errors import NoDataAvailable, OpenEOError, ProcessGraphInvalid
from terracube.execute import lazy_planned, plan_process
from terracube.formats.image import MEDIA_TYPES, blank, encode, to_rgba
from terracube.graph.model import contains_reference
from terracube.graph.udp import UdpLookup
from terracube.processes.env import ProcessEnv
from terracube.services.cache import tile_cache
from terracube.services.canvas import mask_outside, on_grid
from terracube.services.errors import ServiceConfigInvalid, TileOutOfRange
from terracube.services.grid import MAX_LATITUDE, intersection, overlaps, source_pixels, tile_bounds, tile_grid, union, zoom_budget
from terracube.services.model import Service
from terracube.services.render import TILE_OPTIONS, Rendering, ServiceConfig, check_bands, parse_configuration, restyle
from terracube.services.types import PARAMETER_NAMES, service_types_document

__all__ = ["Tile", "Layer", "service_types_document", "check_service", "render_tile", "cached_tile", "memory_tile", "forget_service",
           "describe_layer", "TILE_OPTIONS"]

LOADS = ("load_collection", "load_stac")
DEFAULT_RESOLUTION = 10.0  # metres, for a load whose source pixel size is not known before it runs


@dataclass(frozen=True)
class Tile:
    content: bytes
    media_type: str
    etag: str  # a hash of the content: the same picture has the same ETag, whatever drew it


@dataclass(frozen=True)
class Layer:
    bbox_wgs84: tuple[float, float, float, float]
    times: list[str]  # the dates of the drawn cube (WMTS's TIME values); empty when it has none
    min_zoom: int
    max_zoom: int


@dataclass(frozen=True)
class _Prepared:
    """What every tile of one service version shares: its validated, planned graph and limits."""

    graph: Any
    config: ServiceConfig
    bbox: tuple[float, float, float, float] | None  # WGS84; None: the loads' extent is not known before they run
    resolution: float  # the finest source pixel size of the loads, in metres
    min_zoom: int  # the configured one, raised by the zoom budget


class _PerVersion:
    """A small map from (service id, version) to what was worked out for it; a new version never sees an old entry."""

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def peek(self, service_id: str, version: int) -> Any | None:
        """What was worked out for this version, or None: nothing is made."""
        with self._lock:
            return self._entries.get((service_id, version))

    def get(self, service: Service, make) -> Any:
        key = (service.id, service.version)
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        value = make()  # outside the lock: two threads may both work it out, which is harmless
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = value
        return value


_configs = _PerVersion()
_prepared_graphs = _PerVersion()
_probes = _PerVersion()


def _config(service: Service) -> ServiceConfig:
    return _configs.get(service, lambda: parse_configuration(service.configuration))


def _prepare(env: ProcessEnv, service: Service, udps: UdpLookup | None) -> _Prepared:
    config = _config(service)
    graph = plan_process(service.process, env, udps, PARAMETER_NAMES)
    loads = [node for node in graph.nodes.values() if node.process_id in LOADS]
    if not loads:
        raise ProcessGraphInvalid("This process graph cannot be drawn as map tiles: it loads no data (load_collection or load_stac).")
    boxes, resolutions = [], []
    for node in loads:
        box, resolution = _load_footprint(env, node.process_id, node.arguments)
        boxes.append(box)
        resolutions.append(resolution)
    bbox = None if any(box is None for box in boxes) else union(boxes)
    if config.extent is not None:
        bbox = config.extent if bbox is None else intersection(bbox, config.extent)
    resolution = min(resolutions)
    budget_zoom = zoom_budget(resolution, bbox, env.settings.tile_max_source_pixels)
    return _Prepared(graph, config, bbox, resolution, max(config.min_zoom, budget_zoom))


def _load_footprint(env: ProcessEnv, process_id: str, arguments: dict) -> tuple[tuple | None, float]:
    """A load's WGS84 box (its collection's extent within its own literal extent) and finest pixel size."""
    from terracube.data.grid import bounds_in

    if process_id != "load_collection" or not isinstance(arguments.get("id"), str):
        return None, DEFAULT_RESOLUTION
    source = env.catalog.get(arguments["id"])
    bands = arguments.get("bands") if isinstance(arguments.get("bands"), list) and not contains_reference(arguments["bands"]) else None
    resolution = min((source.band_resolution(band) for band in bands or source.band_names), default=DEFAULT_RESOLUTION)
    try:
        box = tuple(source.ensure_loaded().extent.spatial.bboxes[0][:4])
    except (AttributeError, IndexError, TypeError):
        box = None
    extent = arguments.get("spatial_extent")
    if isinstance(extent, dict) and not contains_reference(extent) and {"west", "south", "east", "north"} <= set(extent):
        own = bounds_in(extent, "EPSG:4326")
        box = own if box is None else intersection(box, own)
    return box, resolution


def _prepared(env: ProcessEnv, service: Service, udps: UdpLookup | None) -> _Prepared:
    return _prepared_graphs.get(service, lambda: _prepare(env, service, udps))


def _parameters(z: int, x: int, y: int, bounds_3857, bounds_wgs84, time: str | None) -> dict:
    def box(bounds, crs):
        return {"west": bounds[0], "south": bounds[1], "east": bounds[2], "north": bounds[3], "crs": crs}

    return {"spatial_extent": box(bounds_wgs84, 4326), "spatial_extent_3857": box(bounds_3857, 3857),
            "tile_zoom": z, "tile_x": x, "tile_y": y, "time": time}


# --- the drawn cube --------------------------------------------------------------------------
def _layer_cube(results) -> Any:
    """The raster cube a graph's result draws, or a clear ProcessGraphInvalid."""
    from terracube.cube import DIM_BANDS, DIM_T, is_raster_cube

    value = results[-1].data
    if not is_raster_cube(value):
        kind = "a vector cube" if hasattr(value, "dims") else f"a {type(value).__name__} value"
        raise ProcessGraphInvalid(f"This process graph cannot be drawn as map tiles: its result is {kind}, not a raster data cube with x and y.")
    others = [dim for dim in value.dims if dim not in ("x", "y", DIM_T, DIM_BANDS)]
    if others:
        raise ProcessGraphInvalid(
            f"This process graph cannot be drawn as map tiles: its result has the dimension(s) {', '.join(map(str, others))} "
            "besides x, y, bands and t; reduce them first (reduce_dimension).")
    return value


def _band_count(cube) -> int:
    return int(cube.sizes.get("bands", 1))


def time_label(value) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _at_time(cube, time: str | None):
    """The cube at one date: the one asked for (None when it has not that date), else its latest."""
    if "t" not in cube.dims:
        return cube
    if time is None:
        return cube.isel(t=-1)
    try:
        stamp = pd.Timestamp(time)
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if pd.isna(stamp):  # pandas reads "NaT" (and "") as no date at all
        raise ServiceConfigInvalid("time", f"'{str(time)[:40]}' is not a date or date-time (RFC 3339)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    labels = pd.DatetimeIndex(cube["t"].values)
    matches = np.flatnonzero(labels == stamp)
    if not len(matches) and stamp == stamp.normalize():
        matches = np.flatnonzero(labels.normalize() == stamp)  # a date asks for that day's label, whatever its time
    return cube.isel(t=int(matches[-1])) if len(matches) else None


# --- the interface ---------------------------------------------------------------------------
def check_service(env: ProcessEnv, service: Service, udps: UdpLookup | None = None) -> None:
    """Refuse a service that cannot be drawn, at once: bad configuration, invalid graph, a result that is no one- or three-band raster cube.

    Nothing is read: the graph is evaluated lazily over the layer's extent on a coarse grid.
    """
    prepared = _prepare(env, service, udps)
    try:
        cube = _probe(env, service, prepared, udps)
    except NoDataAvailable:
        return  # no scenes there now: a remote archive may have them later; the tiles will be empty meanwhile
    check_bands(prepared.config.rendering, _band_count(cube))


def describe_layer(env: ProcessEnv, service: Service, udps: UdpLookup | None = None) -> Layer:
    """The layer as WMTS capabilities and a service's ``attributes`` describe it."""
    prepared = _prepared(env, service, udps)

    def times() -> list[str]:
        try:
            cube = _probe(env, service, prepared, udps)
        except NoDataAvailable:
            return []
        return [time_label(value) for value in cube["t"].values] if "t" in cube.dims else []

    bbox = prepared.bbox or (-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE)
    return Layer(tuple(float(v) for v in bbox), _probes.get(service, times), prepared.min_zoom, prepared.config.max_zoom)


def _probe(env: ProcessEnv, service: Service, prepared: _Prepared, udps: UdpLookup | None):
    """The lazy result cube over the whole layer on a grid of about 256 pixels: its bands and dates, nothing read."""
    from pyproj import Transformer

    west, south, east, north = prepared.bbox or (-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE)
    south, north = max(south, -MAX_LATITUDE), min(north, MAX_LATITUDE)
    to_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (x0, x1), (y0, y1) = to_3857.transform([west, east], [south, north])
    side = max(x1 - x0, y1 - y0, 1.0)
    grid = tile_grid((x0, y1 - side, x0 + side, y1), 256)
    parameters = _parameters(0, 0, 0, (x0, y0, x1, y1), (west, south, east, north), None)
    results = lazy_planned(prepared.graph, _tile_env(env, grid), parameters, udps)
    return _layer_cube(results)


def _tile_env(env: ProcessEnv, grid, eager: bool = False) -> ProcessEnv:
    """``eager``: a tile being drawn, whose loads read at once (numpy-backed cubes); the probe stays lazy, reading nothing."""
    settings = env.settings
    return dataclasses.replace(env, grid=grid, eager=eager, max_pixels=settings.sync_max_pixels, max_values=settings.sync_max_values)


def render_tile(
    env: ProcessEnv,
    service: Service,
    z: int,
    x: int,
    y: int,
    *,
    options: Mapping[str, str] = {},  # noqa: B006 - read only
    time: str | None = None,
    udps: UdpLookup | None = None,
) -> Tile:
    """Tile ``z/x/y`` of ``service`` (``options``: the request's rendering query parameters, ``TILE_OPTIONS``)."""
    key, rendering = _cache_key(service, z, x, y, options, time)
    cache = tile_cache(env.settings)
    held = cache.memory.get(key)
    if held is not None:
        return held
    content = cache.get_or_compute(key, lambda: _draw(env, service, z, x, y, rendering, time, udps))
    return _remember(cache, key, _tile(content, rendering))


def cached_tile(settings, service: Service, z: int, x: int, y: int, *, options: Mapping[str, str] = {},  # noqa: B006 - read only
                time: str | None = None) -> Tile | None:
    """Tile ``z/x/y`` if the cache holds it (in memory or on disk), else None (also for a request ``render_tile`` would refuse).

    Nothing is drawn, so the HTTP side answers a map's cached tiles at once instead of queueing
    them behind the tiles being drawn.
    """
    try:
        key, rendering = _cache_key(service, z, x, y, options, time)
    except OpenEOError:
        return None  # render_tile gives the error, and the service's logs get it
    cache = tile_cache(settings)
    held = cache.memory.get(key)
    if held is not None:
        return held
    content = cache.get(key)
    return None if content is None else _remember(cache, key, _tile(content, rendering))


def memory_tile(settings, service_id: str, version: int, z: int, x: int, y: int, *,
                options: Mapping[str, str] = {}, time: str | None = None) -> Tile | None:  # noqa: B006 - read only
    """Tile ``z/x/y`` of a service's ``version`` if this process holds it in memory, else None.

    Needs no ``Service`` (only its id and version, which a short query gives) and touches no file:
    a few dictionary steps, which the HTTP side takes in its event loop. None also when the
    version's configuration was not parsed here yet, or for a request ``render_tile`` would refuse.
    """
    config = _configs.peek(service_id, version)
    if config is None:
        return None
    try:
        key, _ = _key(service_id, version, config, z, x, y, options, time)
    except OpenEOError:
        return None
    return tile_cache(settings).memory.get(key)


def forget_service(settings, service_id: str, keep_version: int | None = None) -> None:
    """Delete a deleted service's cached tiles, or a changed one's older versions' (never served again)."""
    tile_cache(settings).forget(service_id, keep_version)


def _cache_key(service: Service, z: int, x: int, y: int, options: Mapping[str, str], time: str | None) -> tuple[tuple, Rendering]:
    return _key(service.id, service.version, _config(service), z, x, y, options, time)


def _key(service_id: str, version: int, config: ServiceConfig, z: int, x: int, y: int, options: Mapping[str, str],
         time: str | None) -> tuple[tuple, Rendering]:
    if not (isinstance(z, int) and 0 <= z <= 30 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise TileOutOfRange(f"There is no tile {z}/{x}/{y}: zoom levels go from 0 to 30, and x and y from 0 to 2^zoom - 1.")
    rendering = restyle(config.rendering, options) if options else config.rendering
    if time is not None and not isinstance(time, str):
        raise ServiceConfigInvalid("time", "it must be a date string")
    return (service_id, version, z, x, y, config.tile_size, rendering.key(), time), rendering


def _tile(content: bytes, rendering: Rendering) -> Tile:
    return Tile(content, MEDIA_TYPES[rendering.format], hashlib.blake2b(content, digest_size=16).hexdigest())


def _remember(cache, key: tuple, tile: Tile) -> Tile:
    cache.memory.put(key, tile, len(tile.content))
    return tile


def _draw(env: ProcessEnv, service: Service, z: int, x: int, y: int, rendering: Rendering, time: str | None, udps) -> bytes:
    """Evaluate the graph for one tile and draw it: the expensive part, which the cache spares."""
    from rasterio.errors import RasterioIOError

    from terracube.data.stac_api import ArchiveUnavailable

    prepared = _prepared(env, service, udps)
    config = prepared.config
    if z < prepared.min_zoom or z > config.max_zoom:
        raise TileOutOfRange(_zoom_refusal(env, prepared, z))
    bounds_3857, bounds_wgs84 = tile_bounds(z, x, y)
    if prepared.bbox is not None and not overlaps(bounds_wgs84, prepared.bbox):
        return blank(config.tile_size, rendering.format)
    grid = tile_grid(bounds_3857, config.tile_size)
    try:
        results = lazy_planned(prepared.graph, _tile_env(env, grid, eager=True), _parameters(z, x, y, bounds_3857, bounds_wgs84, time), udps)
        cube = _at_time(_layer_cube(results), time)
        if cube is None:
            return blank(config.tile_size, rendering.format)
        check_bands(rendering, _band_count(cube))
        values = on_grid(cube, grid)
    except NoDataAvailable:
        return blank(config.tile_size, rendering.format)
    except RasterioIOError as error:
        raise ArchiveUnavailable(f"Reading the imagery failed: {error}") from None
    if config.extent is not None:
        mask_outside(values, grid, config.extent)
    return encode(to_rgba(values, rendering.style), rendering.format)


def _zoom_refusal(env: ProcessEnv, prepared: _Prepared, z: int) -> str:
    config = prepared.config
    if z > config.max_zoom:
        return f"Zoom level {z} is above this service's highest zoom level {config.max_zoom} (its configuration's max_zoom)."
    if z < config.min_zoom or prepared.min_zoom == config.min_zoom:
        return f"Zoom level {z} is below this service's lowest zoom level {config.min_zoom} (its configuration's min_zoom)."
    bbox = prepared.bbox
    latitude = 0.0 if bbox is None or bbox[1] <= 0 <= bbox[3] else min(abs(bbox[1]), abs(bbox[3]))
    pixels = source_pixels(z, prepared.resolution, latitude)
    return (
        f"Zoom level {z} is below this service's lowest zoom level {prepared.min_zoom}: a tile at zoom {z} covers about "
        f"{pixels:,} source pixels of {prepared.resolution:g} m, more than the {env.settings.tile_max_source_pixels:,} a tile may "
        f"read (setting tile_max_source_pixels). Zoom in to level {prepared.min_zoom} or further."
    )


def clear_prepared() -> None:
    """Forget the prepared graphs and layer descriptions (tests; an operator's collections file changed)."""
    for table in (_configs, _prepared_graphs, _probes):
        with table._lock:
            table._entries.clear()

