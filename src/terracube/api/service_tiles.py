"""A service's map tiles over HTTP: ``GET /services/{service_id}/tiles/{z}/{x}/{y}.png`` (and ``.jpg``).

These routes are public (auth/access.py): map libraries, the Web Editor and QGIS load tiles as
plain images, without an Authorization header. The service's unguessable id is the credential;
a disabled or deleted service answers ``ServiceNotFound`` from the next request on.

A tile is drawn by ``terracube.services.tiles.render_tile`` as the service's owner, through the
same engine as ``/result``. The engine is synchronous, so each tile runs in a worker thread, at
most ``TILE_WORKERS`` at once, and the event loop stays free for everything else. The query
string holds rendering options that override the service's configuration for this request
(``?colormap=viridis``), and ``time`` picks a time label.

A tile held in memory (``tiles.memory_tile``) is answered in the event loop, without a thread: the
service's enabled version is known from a query at most ``STATE_SECONDS`` old (``EnabledVersions``;
this process's PATCH and DELETE forget it at once), and the tile's key needs nothing else.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from terracube.api.deps import app_catalog, app_settings, udp_store
from terracube.auth import Mode, auth_mode
from terracube.errors import BadRequest, OpenEOError, ServiceNotFound, shortened
from terracube.execute import request_env
from terracube.graph.udp import UdpLookup
from terracube.processes.env import ProcessEnv
from terracube.services import tiles
from terracube.services.errors import TileOutOfRange
from terracube.services.model import Service
from terracube.services.store import EnabledVersions, ServiceStore

router = APIRouter(tags=["secondary services"])

TILE_ROUTE = "/services/{service_id}/tiles/{z}/{x}/{y}"
FORMATS = {"png": "png", "jpg": "jpeg"}  # the URL's extension -> the ``format`` rendering option
# Tiles drawn at once; more requests wait for a slot (a map view asks for a dozen at a time).
TILE_WORKERS = max(2, os.cpu_count() or 2)
# WebMercatorQuad (GoogleMapsCompatible) is defined to zoom 24; beyond 30 a column number is no longer an int32.
MAX_ZOOM = 30
ADDRESS = re.compile(r"[0-9]{1,10}")
# Rendering options are short names and values; anything longer is not one (and would bloat the cache's keys).
MAX_OPTIONS, MAX_OPTION_LENGTH = 32, 1000
# Browsers keep a tile but ask again each time (answered 304 by its ETag), so a change, a
# disabled or a deleted service shows on the map at once.
CACHE_CONTROL = "no-cache"
# Seconds a service's enabled version, as the database gave it, answers its tile requests: a change
# by another server process on the same database (replicas) reaches this one's tiles within this time.
STATE_SECONDS = 1.0


def service_store(app: FastAPI) -> ServiceStore:
    """The app's service store, on the job service's database (opened and migrated in the app's lifespan)."""
    store = getattr(app.state, "services", None)
    if store is None:
        jobs = getattr(app.state, "jobs", None)
        if jobs is None or jobs.store is None:
            raise OpenEOError("Secondary services are not available on this server.", code="FeatureUnsupported", status=501)
        store = app.state.services = ServiceStore(jobs.store)
    return store


def enabled_versions(app: FastAPI) -> EnabledVersions:
    """The app's recently read versions of enabled services (``EnabledVersions``)."""
    versions = getattr(app.state, "service_versions", None)
    if versions is None:
        versions = app.state.service_versions = EnabledVersions(service_store(app), STATE_SECONDS)
    return versions


def forget_tiles(app: FastAPI, service_id: str, keep_version: int | None = None) -> None:
    """After a PATCH (``keep_version``: the new version) or a DELETE: the older tiles are never served again, so they go."""
    enabled_versions(app).forget(service_id)
    tiles.forget_service(app_settings(app), service_id, keep_version)


def tile_address(z: str, x: str, y: str) -> tuple[int, int, int]:
    """The zoom, column and row of a tile URL, or the openEO error saying why there is no such tile."""
    if not all(ADDRESS.fullmatch(part) for part in (z, x, y)):
        address = shortened(f"{z}/{x}/{y}")
        raise BadRequest(f"A tile address is three whole numbers, zoom/x/y, such as 12/2125/1387; got '{address}'.")
    zoom, column, row = int(z), int(x), int(y)
    if zoom > MAX_ZOOM:
        raise TileOutOfRange(f"There is no zoom level {zoom}: the tile grid (GoogleMapsCompatible) ends at {MAX_ZOOM}.")
    last = 2**zoom - 1
    if column > last or row > last:
        raise TileOutOfRange(f"There is no tile {zoom}/{column}/{row}: at zoom {zoom}, x and y run from 0 to {last}.")
    return zoom, column, row


def rendering_options(request: Request, image_format: str) -> tuple[dict[str, str], str | None]:
    """(the query's rendering options with the URL's image format, the ``time`` label or None)."""
    params = request.query_params
    if len(params) > MAX_OPTIONS or any(len(key) + len(value) > MAX_OPTION_LENGTH for key, value in params.multi_items()):
        raise BadRequest(f"A tile takes at most {MAX_OPTIONS} rendering options of at most {MAX_OPTION_LENGTH} characters each.")
    options = {key: value for key, value in params.items() if key != "time"}
    options["format"] = FORMATS[image_format]
    return options, params.get("time") or None


def tile_slots(app: FastAPI) -> asyncio.Semaphore:
    """The app's bound on tiles drawn at once, made in (and for) the running event loop."""
    loop = asyncio.get_running_loop()
    held = getattr(app.state, "tile_slots", None)
    if held is None or held[0] is not loop:
        held = app.state.tile_slots = (loop, asyncio.Semaphore(TILE_WORKERS))
    return held[1]


def owner_env(app: FastAPI, service: Service) -> tuple[ProcessEnv, UdpLookup | None]:
    """What the service's graph runs with: its owner's environment and own processes, as in their requests."""
    env = request_env(app_settings(app), app_catalog(app), user_id=service.user_id, accounts=auth_mode(app) is Mode.ACCOUNTS)
    udps = udp_store(app)
    return env, (udps.lookup(service.user_id) if udps is not None else None)


def draw(app: FastAPI, store: ServiceStore, service: Service, address: tuple[int, int, int], options: Mapping[str, str], time: str | None) -> tiles.Tile:
    """One tile, as the service's owner draws it; a failure goes to the service's logs, where its owner looks."""
    env, lookup = owner_env(app, service)
    z, x, y = address
    data = {"z": z, "x": x, "y": y, "options": dict(options), **({"time": time} if time else {})}
    try:
        return tiles.render_tile(env, service, z, x, y, options=options, time=time, udps=lookup)
    except OpenEOError as error:
        store.add_log(service.id, "error", f"Tile {z}/{x}/{y}: {error.message}", code=error.code, data=data)
        raise
    except Exception as error:  # a bug: the server's log has the traceback, the owner learns that it happened
        store.add_log(service.id, "error", f"Tile {z}/{x}/{y} failed with an internal error ({type(error).__name__}).", code="Internal", data=data)
        raise


def etag_of(tile: tiles.Tile) -> str:
    return tile.etag if tile.etag.startswith(('"', 'W/"')) else f'"{tile.etag}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison, as ``If-None-Match`` uses it."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in (tag.removeprefix("W/") for tag in tags)


async def enabled_service(request: Request, service_id: str) -> Service | None:
    """The service behind a public URL, or None when it does not exist or is disabled (both answer 404)."""
    return await run_in_threadpool(service_store(request.app).enabled, service_id)


async def tile_response(request: Request, service: Service, address: tuple[int, int, int], options: Mapping[str, str], time: str | None) -> Response:
    """A tile read from the cache, or drawn in a worker slot, with its ETag; 304 when the client has it.

    Shared by the XYZ route below and WMTS's GetTile (api/service_wmts.py): the same tiles.
    """
    z, x, y = address
    settings = app_settings(request.app)
    drawn = tiles.memory_tile(settings, service.id, service.version, z, x, y, options=options, time=time)
    if drawn is None:
        # A cached tile is answered at once: it never waits for a drawing slot behind the tiles being drawn.
        drawn = await run_in_threadpool(tiles.cached_tile, settings, service, z, x, y, options=options, time=time)
    if drawn is None:
        async with tile_slots(request.app):
            drawn = await run_in_threadpool(draw, request.app, service_store(request.app), service, address, options, time)
    return tile_answer(request, drawn)


def tile_answer(request: Request, drawn: tiles.Tile) -> Response:
    """The tile with its ETag, or 304 without a body when the client has it already."""
    headers = {"ETag": etag_of(drawn), "Cache-Control": CACHE_CONTROL}
    if not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(drawn.content, media_type=drawn.media_type, headers=headers)


async def tile(request: Request, service_id: str, z: str, x: str, y: str, image_format: str) -> Response:
    # Every request checks that the service is enabled, and which version it is; a thread for the
    # query only when this process has not read it within the last STATE_SECONDS.
    versions = enabled_versions(request.app)
    version = versions.recent(service_id)
    if version is None:
        version = await run_in_threadpool(versions.lookup, service_id)
    if version is None:
        raise ServiceNotFound(shortened(service_id))
    address = tile_address(z, x, y)
    options, time = rendering_options(request, image_format)
    held = tiles.memory_tile(app_settings(request.app), service_id, version, *address, options=options, time=time)
    if held is not None:
        return tile_answer(request, held)  # the hottest tiles: no thread, no file
    service = versions.service(service_id, version)  # that version as read before: it never changes
    if service is None:
        service = await run_in_threadpool(versions.read, service_id)
    if service is None:
        raise ServiceNotFound(shortened(service_id))
    return await tile_response(request, service, address, options, time)


@router.get(TILE_ROUTE + ".png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def png_tile(request: Request, service_id: str, z: str, x: str, y: str) -> Response:
    return await tile(request, service_id, z, x, y, "png")


@router.get(TILE_ROUTE + ".jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def jpeg_tile(request: Request, service_id: str, z: str, x: str, y: str) -> Response:
    return await tile(request, service_id, z, x, y, "jpg")
