"""The collections catalog: which openEO collections exist and where their scenes come from.

Every collection is a STAC source: the embedded simulated ``SENTINEL2_L2A`` archive (a static
catalog built into the data directory), or what an operator declares in the collections file (a
STAC API or a static catalog anywhere). All of them are searched and read by the same code.

A STAC API's collection document is fetched on first use and kept for ``stac_cache_seconds``
(an hour); a failure is remembered for ``stac_error_cache_seconds`` (half a minute), so an
archive that is down answers every request at once with the same error instead of making each
one wait for the timeout, and a cached document outlives a failed refresh. Static catalogs are
read once, items included, and kept in memory.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pystac

from terracube.data.collections_file import CollectionConfig, load_collection_configs
from terracube.data.grid import bounds_in
from terracube.data.network import ArchiveUnavailable, failure, headers_from_environment
from terracube.errors import CollectionNotFound, OpenEOError
from terracube.settings import Settings

log = logging.getLogger("terracube.catalog")

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
# What an upstream collection document carries that means nothing for the openEO collection.
UPSTREAM_ONLY = ("item_assets", "assets")


def item_interval(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    """The item's time: its ``datetime``, or its ``start_datetime``/``end_datetime`` (a job's results have those)."""
    if item.datetime is not None:
        return item.datetime, item.datetime
    common = item.common_metadata
    return common.start_datetime, common.end_datetime


def item_sort_key(item: pystac.Item) -> datetime:
    start, _ = item_interval(item)
    return start or datetime.min.replace(tzinfo=timezone.utc)


def in_window(item: pystac.Item, bbox, start: datetime | None, end: datetime | None) -> bool:
    """Does the item intersect a WGS84 bbox and the half-open interval [start, end)?"""
    if bbox is not None and item.bbox is not None:
        west, south, east, north = item.bbox
        if west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]:
            return False
    first, last = item_interval(item)
    if start is not None and last is not None and last < start:
        return False
    if end is not None and first is not None and first >= end:
        return False
    return True


class CollectionSource:
    """One openEO collection over a STAC source.

    ``locate`` gives the URL or path of a static catalog / STAC API root and may build it (the
    sample archive does); it is called on first use only, so listing collections stays instant.
    """

    def __init__(
        self,
        id: str,
        locate: Callable[[], str],
        stac_collection_id: str,
        config: CollectionConfig | None = None,
        settings: Settings | None = None,  # None: the Catalog that holds the source gives its own
    ):
        self.id = id
        self.locate = locate
        self.stac_collection_id = stac_collection_id
        self.config = config
        self.settings = settings
        self.native_crs: str | None = config.native_crs if config else "EPSG:32632"
        self._collection: pystac.Collection | None = None
        self._loaded_at = 0.0
        self._error: OpenEOError | None = None
        self._error_at = 0.0
        self._items: list[pystac.Item] | None = None
        self._client = None
        self._lock = threading.Lock()

    @property
    def is_api(self) -> bool:
        return self.config is not None and self.config.kind == "api"

    @property
    def stac_headers(self) -> dict[str, str]:
        return headers_from_environment(self.config.stac_headers, self.id) if self.config else {}

    # --- metadata -------------------------------------------------------------------------
    def ensure_loaded(self) -> pystac.Collection:
        with self._lock:
            now = time.monotonic()
            if self._collection is not None and (not self.is_api or now - self._loaded_at < self._ttl()):
                return self._collection
            if self._error is not None and now - self._error_at < self._error_ttl():
                if self._collection is not None:
                    return self._collection  # stale, but better than nothing while the archive is down
                raise _again(self._error)
            try:
                self._load()
                self._loaded_at, self._error = time.monotonic(), None
            except OpenEOError as error:
                self._error, self._error_at = error, time.monotonic()
                if self._collection is not None:
                    log.warning("collection %s: refreshing its STAC metadata failed, keeping the cached one: %s", self.id, error.message)
                    return self._collection
                raise
            return self._collection

    def _ttl(self) -> float:
        return float(self.settings.stac_cache_seconds)

    def _error_ttl(self) -> float:
        return float(self.settings.stac_error_cache_seconds)

    def _load(self) -> None:
        if self.is_api:
            from terracube.data.stac_api import get_collection, open_api

            client = open_api(self.locate(), self.settings, self.stac_headers)
            self._collection = get_collection(client, self.stac_collection_id)
            self._client = client
        else:
            self._collection, self._items = read_static(self.locate(), self.stac_collection_id, self.settings, self.stac_headers)

    @property
    def band_metadata(self) -> list[dict]:
        if self.config is not None and self.config.bands:
            return [band.model_dump(exclude_none=True) for band in self.config.bands]
        summaries = self.ensure_loaded().summaries.to_dict()
        return summaries.get("eo:bands") or summaries.get("bands") or []

    @property
    def band_names(self) -> list[str]:
        return [band["name"] for band in self.band_metadata]

    def _band(self, band: str) -> dict:
        return next((meta for meta in self.band_metadata if meta["name"] == band), {})

    def asset_key(self, band: str) -> str:
        return self._band(band).get("asset", band)

    def band_resolution(self, band: str) -> float:
        meta = self._band(band)
        return float(meta.get("gsd") or meta.get("openeo:gsd") or 10)

    def is_reflectance(self, band: str) -> bool:
        return bool(self._band(band).get("reflectance"))

    def band_nodata(self, band: str) -> float | None:
        return self._band(band).get("nodata")

    # --- search ---------------------------------------------------------------------------
    def search(
        self,
        bbox: tuple[float, float, float, float] | None,
        start: datetime | None,
        end: datetime | None,
        conditions: list | None = None,
    ) -> list[pystac.Item]:
        """Items intersecting a WGS84 bbox in the half-open interval [start, end), as openEO filters time.

        ``conditions`` (``properties.Condition``) narrow a STAC API search; static catalogs ignore
        them, the caller checks the property callbacks on every item either way.
        """
        self.ensure_loaded()
        if self.is_api:
            from terracube.data.stac_api import search_api

            return search_api(self._client, self.stac_collection_id, bbox, start, end, conditions, self.settings)
        return [item for item in self._items or [] if in_window(item, bbox, start, end)]

    def static_items(self) -> list[pystac.Item]:
        """Every item of a static catalog (none for a STAC API), oldest first: the item search pages through them."""
        self.ensure_loaded()
        return list(self._items or [])

    def api_client(self):
        """The pystac-client ``Client`` of a STAC API source (None for a static catalog)."""
        self.ensure_loaded()
        return self._client

    def queryables(self) -> dict[str, Any] | None:
        if not self.is_api:
            return None
        self.ensure_loaded()
        from terracube.data.stac_api import queryables

        return queryables(self._client, self.stac_collection_id)


def _again(error: OpenEOError) -> OpenEOError:
    """A fresh copy of a remembered error (its own id; the same code, status and message)."""
    again = type(error)(error.message, code=error.code, status=error.status)
    return again


def read_static(location: str, collection_id: str, settings: Settings, headers: dict | None = None):
    """Read a static catalog once; items stay in memory, which keeps a warm request fast."""
    from terracube.data.stac_api import stac_io

    io = stac_io(settings, headers) if "://" in str(location) else None
    try:
        root = pystac.read_file(location, stac_io=io)
    except Exception as error:
        raise failure(error, str(location), "Reading the static STAC catalog") from None
    if isinstance(root, pystac.Collection) and (root.id == collection_id or not collection_id):
        collection = root
    else:
        collection = root.get_child(collection_id) if isinstance(root, pystac.Catalog) else None
    if collection is None:
        raise ArchiveUnavailable(f"The static STAC catalog {location} has no collection '{collection_id}': check the collections file.")
    try:
        items = list(collection.get_items(recursive=True))
    except Exception as error:
        raise failure(error, str(location), "Reading the items of the static STAC catalog") from None
    for item in items:
        item.make_asset_hrefs_absolute()
    return collection, sorted(items, key=item_sort_key)


def sample_source(settings: Settings) -> CollectionSource:
    """The embedded simulated archive, built into the data directory on first use."""
    from terracube.data.sample import SAMPLE_COLLECTION_ID, ensure_sample_archive

    return CollectionSource(
        SAMPLE_COLLECTION_ID, lambda: str(ensure_sample_archive(settings.sample_dir, scenes=settings.sample_scenes())),
        SAMPLE_COLLECTION_ID, settings=settings
    )


def configured_sources(settings: Settings) -> list[CollectionSource]:
    sources = []
    for config in load_collection_configs(settings.collections_file):
        if config.enabled:
            sources.append(CollectionSource(config.id, lambda url=config.stac_url: url, config.stac_collection, config, settings))
    return sources


class Catalog:
    def __init__(self, settings: Settings, sources: list[CollectionSource] | None = None):
        self.settings = settings
        if sources is None:
            # An operator's collection with the sample's id replaces the sample.
            sources = [sample_source(settings), *configured_sources(settings)]
        for source in sources:
            if source.settings is None:
                source.settings = settings
        self._sources = {source.id: source for source in sources}

    def ids(self) -> list[str]:
        return sorted(self._sources)

    def get(self, collection_id: str) -> CollectionSource:
        try:
            return self._sources[collection_id]
        except KeyError:
            raise CollectionNotFound(
                f"Collection '{collection_id}' does not exist. Available: {', '.join(self.ids())}."
            ) from None

    def sources(self) -> list[CollectionSource]:
        return list(self._sources.values())

    def stac_collection(self, collection_id: str) -> dict[str, Any]:
        """The openEO view of a collection: its STAC document plus ``cube:dimensions``.

        For a STAC API collection this is the upstream document (extent, summaries, providers,
        keywords...) with the openEO id, the band names of the collections file and the cube's
        dimensions; the upstream's own links and asset definitions stay upstream.
        """
        source = self.get(collection_id)
        collection = source.ensure_loaded()
        try:
            document = copy.deepcopy(collection.to_dict(include_self_link=False, transform_hrefs=False))
        except Exception as error:  # an upstream document pystac cannot serialize is the archive's fault
            raise ArchiveUnavailable(f"The STAC collection of '{collection_id}' is not valid STAC: {error}") from None
        document["id"] = collection_id
        for key in UPSTREAM_ONLY:
            document.pop(key, None)
        config = source.config
        if config is not None:
            document["title"] = config.title or document.get("title")
            document["description"] = config.description or document.get("description", "")
            if "license" in config.model_fields_set or "license" not in document:
                document["license"] = config.license
            if config.providers:
                document["providers"] = config.providers
        document["links"] = [link for link in document.get("links", []) if link.get("rel") in ("license", "about", "describedby", "cite-as")]
        extensions = [ext for ext in document.get("stac_extensions", []) if "item-assets" not in ext]
        if DATACUBE_EXTENSION not in extensions:
            extensions.append(DATACUBE_EXTENSION)
        document["stac_extensions"] = extensions
        summaries = document.setdefault("summaries", {})
        bands = [{k: v for k, v in band.items() if k not in ("asset", "reflectance", "scale", "offset", "nodata")} for band in source.band_metadata]
        summaries["eo:bands"] = bands
        summaries.pop("bands", None)
        raster = [
            {"name": band["name"], **{k: band[k] for k in ("scale", "offset", "nodata") if band.get(k) is not None}}
            for band in source.band_metadata
        ]
        if any(len(entry) > 1 for entry in raster):
            summaries["raster:bands"] = raster
        document["cube:dimensions"] = self._dimensions(source, document)
        return document

    @staticmethod
    def _dimensions(source: CollectionSource, document: dict) -> dict[str, Any]:
        bbox = document["extent"]["spatial"]["bbox"][0]
        interval = document["extent"]["temporal"]["interval"][0]
        crs = source.native_crs or "EPSG:4326"
        try:
            west, south, east, north = bounds_in({"west": bbox[0], "south": bbox[1], "east": bbox[2], "north": bbox[3]}, crs)
            if not all(math.isfinite(v) for v in (west, south, east, north)):
                raise ValueError("not finite")
        except Exception:  # a global extent has no bounds in one UTM zone
            crs, (west, south, east, north) = "EPSG:4326", bbox[:4]
        epsg = int(crs.split(":")[1])
        step = min((band.get("gsd", 10) for band in source.band_metadata), default=10) if source.native_crs else None
        return {
            "x": {"type": "spatial", "axis": "x", "extent": [west, east], "step": step, "reference_system": epsg},
            "y": {"type": "spatial", "axis": "y", "extent": [south, north], "step": step, "reference_system": epsg},
            "t": {"type": "temporal", "extent": interval, "step": None},
            "bands": {"type": "bands", "values": source.band_names},
        }

    def queryables(self, collection_id: str) -> dict[str, Any]:
        """What ``load_collection(properties=...)`` can filter on, as JSON Schema.

        A STAC API's own queryables (when it publishes them) are added to the common ones; the
        answer never waits on an archive that is down (its queryables are then the common ones).
        """
        source = self.get(collection_id)
        properties: dict[str, Any] = {
            "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100},
            "platform": {"title": "Platform", "type": "string"},
            "sat:relative_orbit": {"title": "Relative orbit", "type": "integer", "minimum": 1},
        }
        try:
            upstream = source.queryables()
        except OpenEOError as error:
            log.info("queryables of %s: the archive did not answer (%s)", collection_id, error.message)
            upstream = None
        for name, schema in ((upstream or {}).get("properties") or {}).items():
            if isinstance(schema, dict) and name not in ("datetime", "geometry", "id", "collection") and not schema.get("$ref"):
                properties.setdefault(name, {k: v for k, v in schema.items() if k in ("title", "description", "type", "minimum", "maximum", "enum", "pattern", "format")})
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"queryables/{collection_id}",
            "type": "object",
            "title": f"Queryables of {collection_id}",
            "properties": properties,
            "additionalProperties": False,
        }
