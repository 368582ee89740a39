"""The collections catalog: which openEO collections exist and where their scenes come from.

Today the catalog holds the embedded, simulated ``SENTINEL2_L2A`` archive; every collection is a
STAC source (a static catalog on disk or over HTTP) read by the same code, so real archives plug
in as further ``CollectionSource`` entries.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pystac

from terracube.errors import CollectionNotFound
from terracube.settings import Settings


@dataclass
class CollectionSource:
    id: str
    # Returns the path or URL of a static STAC catalog; may build it (the sample archive does).
    locate: Callable[[], str]
    stac_collection_id: str
    native_crs: str = "EPSG:32632"
    items: list[pystac.Item] | None = None
    collection: pystac.Collection | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def band_metadata(self) -> list[dict]:
        summaries = self.ensure_loaded().summaries.to_dict()
        return summaries.get("eo:bands") or summaries.get("bands") or []

    @property
    def band_names(self) -> list[str]:
        return [band["name"] for band in self.band_metadata]

    def band_resolution(self, band: str) -> float:
        for meta in self.band_metadata:
            if meta["name"] == band:
                return float(meta.get("gsd") or meta.get("openeo:gsd") or 10)
        return 10.0

    def ensure_loaded(self) -> pystac.Collection:
        """Read the static catalog once; items stay in memory, which keeps a warm request fast."""
        with self.lock:
            if self.collection is None:
                catalog = pystac.Catalog.from_file(self.locate())
                collection = catalog.get_child(self.stac_collection_id)
                if collection is None:
                    raise CollectionNotFound(f"STAC collection '{self.stac_collection_id}' missing from {self.locate()}.")
                items = list(collection.get_items(recursive=True))
                for item in items:
                    item.make_asset_hrefs_absolute()
                self.items = sorted(items, key=lambda item: item.datetime or datetime.min)
                self.collection = collection
            return self.collection

    def search(self, bbox: tuple[float, float, float, float] | None, start: datetime | None, end: datetime | None) -> list[pystac.Item]:
        """Items intersecting a WGS84 bbox in the half-open interval [start, end), as openEO filters time."""
        self.ensure_loaded()
        found = []
        for item in self.items or []:
            if bbox is not None and item.bbox is not None:
                west, south, east, north = item.bbox
                if west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]:
                    continue
            when = item.datetime
            if start is not None and when < start:
                continue
            if end is not None and when >= end:
                continue
            found.append(item)
        return found


def sample_source(settings: Settings) -> CollectionSource:
    """The embedded simulated archive, built into the data directory on first use."""
    from terracube.data.sample import SAMPLE_COLLECTION_ID, ensure_sample_archive

    return CollectionSource(
        id=SAMPLE_COLLECTION_ID,
        locate=lambda: str(ensure_sample_archive(settings.sample_dir)),
        stac_collection_id=SAMPLE_COLLECTION_ID,
    )


class Catalog:
    def __init__(self, settings: Settings, sources: list[CollectionSource] | None = None):
        self.settings = settings
        if sources is None:
            sources = [sample_source(settings)]
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
        document["links"] = [link for link in document.get("links", []) if link.get("rel") in ("license", "about")]
        document.setdefault("stac_extensions", [])
        datacube = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
        if datacube not in document["stac_extensions"]:
            document["stac_extensions"].append(datacube)
        document["cube:dimensions"] = self._dimensions(source, document)
        return document

    @staticmethod
    def _dimensions(source: CollectionSource, document: dict) -> dict[str, Any]:
        bbox = document["extent"]["spatial"]["bbox"][0]
        interval = document["extent"]["temporal"]["interval"][0]
        epsg = int(source.native_crs.split(":")[1])
        from terracube.data.grid import bounds_in

        west, south, east, north = bounds_in(
            {"west": bbox[0], "south": bbox[1], "east": bbox[2], "north": bbox[3]}, source.native_crs
        )
        return {
            "x": {"type": "spatial", "axis": "x", "extent": [west, east], "step": 10, "reference_system": epsg},
            "y": {"type": "spatial", "axis": "y", "extent": [south, north], "step": 10, "reference_system": epsg},
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
                "platform": {"title": "Platform", "type": "string", "enum": ["sentinel-2a", "sentinel-2b"]},
                "sat:relative_orbit": {"title": "Relative orbit", "type": "integer", "minimum": 1},
            },
            "additionalProperties": False,
        }
