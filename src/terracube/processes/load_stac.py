"""load_stac: any STAC Item, Collection, static Catalog or STAC API as a data cube.

A batch job's results document is a STAC Item or Collection, so the result of one job is the
input of the next. The same search-and-read path as ``load_collection`` is used.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pystac

from terracube.data.catalog import CollectionSource
from terracube.errors import OpenEOError
from terracube.processes.env import ProcessEnv
from terracube.processes.load import load_from_source

StacUnreadable = type("StacUnreadable", (OpenEOError,), {"code": "ProcessParameterInvalid", "status": 400})


class StacUrlSource(CollectionSource):
    """The items behind a STAC URL; band names are the assets' keys (or their ``eo:bands`` names)."""

    def __init__(self, url: str):
        super().__init__(url, lambda: url, "")
        self.native_crs = None
        self._bands: list[dict] = []

    def ensure_loaded(self) -> pystac.Collection:
        with self._lock:
            if self._collection is None:
                self._read()
            return self._collection

    def _read(self) -> None:
        try:
            document = pystac.read_file(self.locate())
        except Exception as error:
            raise StacUnreadable(f"load_stac could not read a STAC document at {self.locate()}: {error}") from None
        if isinstance(document, pystac.Item):
            items = [document]
        else:
            items = list(document.get_items(recursive=True))
        if not items:
            raise StacUnreadable(f"The STAC document at {self.locate()} holds no items.")
        for item in items:
            item.make_asset_hrefs_absolute()
        self._items = sorted(items, key=lambda item: item.datetime or datetime.min.replace(tzinfo=timezone.utc))
        self._bands = _bands_of(self._items[0])
        epsg = self._items[0].properties.get("proj:epsg") or str(self._items[0].properties.get("proj:code", "")).removeprefix("EPSG:")
        self.native_crs = f"EPSG:{epsg}" if epsg else None
        self._collection = document if isinstance(document, pystac.Collection) else _collection_for(self._items)

    @property
    def band_metadata(self) -> list[dict]:
        self.ensure_loaded()
        return self._bands


def _bands_of(item: pystac.Item) -> list[dict]:
    bands = []
    for key, asset in item.assets.items():
        roles = asset.roles or ["data"]
        if "data" not in roles or "tiff" not in (asset.media_type or "image/tiff"):
            continue
        transform = asset.extra_fields.get("proj:transform") or item.properties.get("proj:transform")
        gsd = asset.extra_fields.get("gsd") or item.properties.get("gsd") or (abs(transform[0]) if transform else 10)
        bands.append({"name": key, "asset": key, "gsd": gsd})
    return bands


def _collection_for(items: list[pystac.Item]) -> pystac.Collection:
    west = min(item.bbox[0] for item in items)
    south = min(item.bbox[1] for item in items)
    east = max(item.bbox[2] for item in items)
    north = max(item.bbox[3] for item in items)
    times = [item.datetime for item in items if item.datetime]
    return pystac.Collection(
        "load_stac",
        "Items read by load_stac",
        pystac.Extent(pystac.SpatialExtent([[west, south, east, north]]), pystac.TemporalExtent([[min(times), max(times)]])),
    )


def load_stac(
    url: str,
    spatial_extent: dict | None = None,
    temporal_extent: list | None = None,
    bands: list[str] | None = None,
    properties: dict | None = None,
    *,
    env: ProcessEnv,
):
    return load_from_source(StacUrlSource(url), spatial_extent, temporal_extent, bands, properties, env)
