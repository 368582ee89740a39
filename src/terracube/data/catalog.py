"""The collections catalog: which openEO collections exist and where their scenes come from.

Every collection is a STAC source: the embedded simulated ``SENTINEL2_L2A`` archive (a static
catalog built into the data directory), or what an operator declares in the collections file (a
STAC API or a static catalog anywhere). All of them are searched and read by the same code.
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import Any, Callable

import pystac

from terracube.data.collections_file import CollectionConfig, load_collection_configs
from terracube.data.grid import bounds_in
from terracube.errors import CollectionNotFound
from terracube.settings import Settings

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"


class CollectionSource:
    """One openEO collection over a STAC source.

    ``locate`` gives the URL or path of a static catalog / STAC API root and may build it (the
    sample archive does); it is called on first use only, so listing collections stays instant.
    """

    def __init__(self, id: str, locate: Callable[[], str], stac_collection_id: str, config: CollectionConfig | None = None):
        self.id = id
        self.locate = locate
        self.stac_collection_id = stac_collection_id
        self.config = config
        self.native_crs: str | None = config.native_crs if config else "EPSG:32632"
        self._collection: pystac.Collection | None = None
        self._items: list[pystac.Item] | None = None
        self._client = None
        self._lock = threading.Lock()

    @property
    def is_api(self) -> bool:
        return self.config is not None and self.config.kind == "api"

    # --- metadata -------------------------------------------------------------------------
    def ensure_loaded(self) -> pystac.Collection:
        with self._lock:
            if self._collection is None:
                if self.is_api:
                    from terracube.data.stac_api import open_api

                    # 20 s per request and two retries: an archive that does not answer fails fast.
                    self._client = open_api(self.locate(), timeout=20.0, retries=2)
                    self._collection = self._client.get_collection(self.stac_collection_id)
                else:
                    self._collection, self._items = _read_static(self.locate(), self.stac_collection_id)
            return self._collection

    @property
    def band_metadata(self) -> list[dict]:
        if self.config is not None and self.config.bands:
            return [band.model_dump(exclude_none=True) for band in self.config.bands]
        summaries = self.ensure_loaded().summaries.to_dict()
        return summaries.get("eo:bands") or summaries.get("bands") or []

    @property
    def band_names(self) -> list[str]:
        return [band["name"] for band in self.band_metadata]

    def asset_key(self, band: str) -> str:
        for meta in self.band_metadata:
            if meta["name"] == band:
                return meta.get("asset", band)
        return band

    def band_resolution(self, band: str) -> float:
        for meta in self.band_metadata:
            if meta["name"] == band:
                return float(meta.get("gsd") or meta.get("openeo:gsd") or 10)
        return 10.0

    def is_reflectance(self, band: str) -> bool:
        return any(meta["name"] == band and meta.get("reflectance") for meta in self.band_metadata)

    # --- search ---------------------------------------------------------------------------
    def search(
        self,
        bbox: tuple[float, float, float, float] | None,
        start: datetime | None,
        end: datetime | None,
        query: dict | None = None,
    ) -> list[pystac.Item]:
        """Items intersecting a WGS84 bbox in the half-open interval [start, end), as openEO filters time."""
        self.ensure_loaded()
        if self.is_api:
            from terracube.data.stac_api import search_api

            return search_api(self._client, self.stac_collection_id, bbox, start, end, query)
        found = []
        for item in self._items or []:
            if bbox is not None and item.bbox is not None:
                west, south, east, north = item.bbox
                if west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]:
                    continue
            if start is not None and item.datetime < start:
                continue
            if end is not None and item.datetime >= end:
                continue
            found.append(item)
        return found


def _read_static(location: str, collection_id: str) -> tuple[pystac.Collection, list[pystac.Item]]:
    """Read a static catalog once; items stay in memory, which keeps a warm request fast."""
    root = pystac.read_file(location)
    if isinstance(root, pystac.Collection) and root.id == collection_id:
        collection = root
    else:
        collection = root.get_child(collection_id) if isinstance(root, pystac.Catalog) else None
    if collection is None:
        raise CollectionNotFound(f"STAC collection '{collection_id}' is missing from {location}.")
    items = list(collection.get_items(recursive=True))
    for item in items:
        item.make_asset_hrefs_absolute()
    return collection, sorted(items, key=lambda item: item.datetime or datetime.min)


def sample_source(settings: Settings) -> CollectionSource:
    """The embedded simulated archive, built into the data directory on first use."""
    from terracube.data.sample import SAMPLE_COLLECTION_ID, ensure_sample_archive

    return CollectionSource(SAMPLE_COLLECTION_ID, lambda: str(ensure_sample_archive(settings.sample_dir)), SAMPLE_COLLECTION_ID)


def configured_sources(settings: Settings) -> list[CollectionSource]:
    sources = []
    for config in load_collection_configs(settings.collections_file):
        if config.enabled:
            sources.append(CollectionSource(config.id, lambda url=config.stac_url: url, config.stac_collection, config))
    return sources


class Catalog:
    def __init__(self, settings: Settings, sources: list[CollectionSource] | None = None):
        self.settings = settings
        if sources is None:
            # An operator's collection with the sample's id replaces the sample.
            sources = [sample_source(settings), *configured_sources(settings)]
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

    def stac_collection(self, collection_id: str) -> dict[str, Any]:
        """The openEO view of a collection: its STAC document plus ``cube:dimensions``."""
        source = self.get(collection_id)
        document = copy.deepcopy(source.ensure_loaded().to_dict(include_self_link=False, transform_hrefs=False))
        document["id"] = collection_id
        if source.config is not None:
            document["title"] = source.config.title or document.get("title")
            document["description"] = source.config.description or document.get("description", "")
        document["links"] = [link for link in document.get("links", []) if link.get("rel") in ("license", "about")]
        document.setdefault("stac_extensions", [])
        if DATACUBE_EXTENSION not in document["stac_extensions"]:
            document["stac_extensions"].append(DATACUBE_EXTENSION)
        summaries = document.setdefault("summaries", {})
        summaries["eo:bands"] = [{k: v for k, v in band.items() if k not in ("asset", "reflectance")} for band in source.band_metadata]
        document["cube:dimensions"] = self._dimensions(source, document)
        return document

    @staticmethod
    def _dimensions(source: CollectionSource, document: dict) -> dict[str, Any]:
        bbox = document["extent"]["spatial"]["bbox"][0]
        interval = document["extent"]["temporal"]["interval"][0]
        crs = source.native_crs or "EPSG:4326"
        west, south, east, north = bounds_in({"west": bbox[0], "south": bbox[1], "east": bbox[2], "north": bbox[3]}, crs)
        epsg = int(crs.split(":")[1])
        step = min((band.get("gsd", 10) for band in source.band_metadata), default=10) if source.native_crs else None
        return {
            "x": {"type": "spatial", "axis": "x", "extent": [west, east], "step": step, "reference_system": epsg},
            "y": {"type": "spatial", "axis": "y", "extent": [south, north], "step": step, "reference_system": epsg},
            "t": {"type": "temporal", "extent": interval, "step": None},
            "bands": {"type": "bands", "values": source.band_names},
        }

    def queryables(self, collection_id: str) -> dict[str, Any]:
        """What ``load_collection(properties=...)`` can filter on, as JSON Schema."""
        self.get(collection_id)
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"queryables/{collection_id}",
            "type": "object",
            "title": f"Queryables of {collection_id}",
            "properties": {
                "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100},
                "platform": {"title": "Platform", "type": "string"},
                "sat:relative_orbit": {"title": "Relative orbit", "type": "integer", "minimum": 1},
            },
            "additionalProperties": False,
        }
