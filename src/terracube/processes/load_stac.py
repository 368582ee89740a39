"""load_stac: any STAC Item, Collection, static Catalog or STAC API collection as a data cube.

The URL may name

- a STAC Item (a batch job's results document is one: the result of one job is the input of the
  next), or a FeatureCollection of items;
- a static Collection or Catalog, whose items are found by following its links;
- a collection of a STAC API (``.../collections/{id}``, it has an ``items`` link): it is searched
  like a ``load_collection`` source, with the extents and ``properties`` pushed down.

Band names are the assets' keys; a multi-band asset gives its bands' names (``raster:bands`` /
``eo:bands``). A GeoTIFF that terracube (or CDSE) wrote for a cube with a time dimension names its
bands ``2021-07-21_B04``: such bands become the time and band labels again, so a multi-date result
loads back as the cube that was saved. The same search-and-read path as ``load_collection`` is used.

A URL the server cannot read, or that is not STAC, is the user's ``ProcessParameterInvalid``
(400); an archive that fails while its scenes are searched or read is ``ArchiveUnavailable`` (502).
Local paths are only read inside the sample archive (``<data_dir>/sample``) and
``load_stac_local_dirs``: the server's disk is not the user's, and the rest of the data directory
holds other users' files and results (a job's results are read through their signed URL).

The URL is the user's: it, every request made while reading it (redirects included), and the
href of every asset that is read must not point inside the server's network (``data/fetch_guard``),
unless it is in an archive of the collections file, which is the operator's and trusted. The
assets' bytes come through the guard too, not through GDAL's own HTTP client, which would follow
redirects by itself (``data/guarded_read``); assets at other URL schemes (``s3://``) are refused,
as GDAL would read them with the server's credentials.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pystac
import xarray as xr

from terracube.cube import DIM_T
from terracube.data.catalog import CollectionSource, in_window, item_sort_key
from terracube.data.crs import shared_crs
from terracube.data.fetch_guard import REFUSED, FetchGuard, FetchRefused
from terracube.data.network import ArchiveUnavailable, failure, redact
from terracube.errors import NoDataAvailable, OpenEOError, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings
from terracube.processes.load import (
    _check_bands,
    _check_extent,
    check_size,
    find_items,
    read_cube,
    request_grid,
    request_window,
    tile_window,
)

_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T[\d:]+Z?)?(?:_(.+))?$")
_RASTER_TYPES = ("image/tiff", "image/jp2", "application/x-netcdf", "image/vnd.stac.geotiff")
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".TIF", ".TIFF", ".JP2")


class StacUnreadable(ProcessParameterInvalid):
    pass


class StacUrlSource(CollectionSource):
    """The items behind a STAC URL, read once; its bands are the items' raster assets."""

    def __init__(self, url: str, settings: Settings, config=None):
        super().__init__(url, lambda: url, "", config=config, settings=settings)
        self.url = url
        self.native_crs = None
        self._bands: list[dict] = []
        self._read = False
        # An archive of the collections file is the operator's; any other URL is checked before each fetch.
        self.guard = None if config is not None else FetchGuard.from_settings(settings)

    @property
    def is_api(self) -> bool:
        return self._client is not None

    def ensure_loaded(self) -> pystac.Collection:
        with self._lock:
            if not self._read:
                self._open()
                self._read = True
            return self._collection

    # --- reading the document -------------------------------------------------------------
    def _open(self) -> None:
        from terracube.data.stac_api import stac_io

        location = check_location(self.url, self.settings)
        if self.guard is not None:
            self.guard.check(location)
        io = stac_io(self.settings, self.stac_headers, self.guard)
        try:
            document = json.loads(io.read_text(location))
        except Exception as error:
            if REFUSED in str(error):  # a redirect into the server's network
                raise FetchRefused() from None
            reason = failure(error, location, "Reading").message if "://" in location else f"{type(error).__name__}: {error}"
            raise StacUnreadable(f"load_stac could not read a STAC document at {redact(self.url)}: {reason}") from None
        if not isinstance(document, dict):
            raise StacUnreadable(f"load_stac: {redact(self.url)} is JSON but not a STAC document.")
        kind = document.get("type")
        try:
            if kind == "Feature":
                items = [_item(document, location)]
            elif kind == "FeatureCollection":
                items = [_item(feature, location) for feature in document.get("features", [])]
            elif kind == "Collection" and _link(document, "items") is not None:
                items = self._open_api_collection(document, location)
            elif kind in ("Collection", "Catalog"):
                if kind == "Catalog" and any("item-search" in uri for uri in document.get("conformsTo", [])):
                    raise StacUnreadable(
                        f"load_stac: {redact(self.url)} is the root of a STAC API; give the URL of one of its collections "
                        f"({redact(self.url).rstrip('/')}/collections/<id>)."
                    )
                root = pystac.read_file(location, stac_io=io)
                items = list(root.get_items(recursive=True))
                if isinstance(root, pystac.Collection):
                    self._collection = root
            else:
                raise StacUnreadable(f"load_stac: {redact(self.url)} is not a STAC Item, Collection or Catalog (type {kind!r}).")
        except OpenEOError:
            raise
        except Exception as error:
            if REFUSED in str(error):
                raise FetchRefused() from None
            raise StacUnreadable(f"load_stac could not read the STAC document at {redact(self.url)}: {type(error).__name__}: {error}") from None
        if self._client is None:
            if not items:
                raise StacUnreadable(f"The STAC document at {redact(self.url)} holds no items.")
            for item in items:
                item.make_asset_hrefs_absolute()
            self._items = sorted(items, key=item_sort_key)
        self._bands = _bands_of(items)
        if not self._bands:
            raise StacUnreadable(f"The STAC items at {redact(self.url)} have no raster assets (GeoTIFF, JPEG 2000) to load.")
        if self._collection is None:
            self._collection = _collection_for(items) if items else None

    def _open_api_collection(self, document: dict, location: str) -> list[pystac.Item]:
        """A collection of a STAC API: remember the client, and sample its assets from one item."""
        from terracube.data.stac_api import open_api

        root = _link(document, "root") or location.split("/collections/")[0]
        self.stac_collection_id = document["id"]
        self._collection = pystac.Collection.from_dict(document, href=location, migrate=True)
        if self.guard is not None:
            self.guard.check(root)
        try:
            self._client = open_api(root, self.settings, self.stac_headers, self.guard)
            sample = next(self._client.search(collections=[self.stac_collection_id], max_items=1, limit=1).items(), None)
        except OpenEOError:
            raise
        except Exception as error:
            raise failure(error, root, f"Searching collection '{self.stac_collection_id}' of the STAC API") from None
        if sample is None:
            raise NoDataAvailable(f"The STAC API collection at {redact(self.url)} has no items.")
        return [sample]

    # --- what load_from_source asks -------------------------------------------------------
    @property
    def band_metadata(self) -> list[dict]:
        self.ensure_loaded()
        return self._bands

    def band_resolution(self, band: str) -> float:
        meta = self._band(band)
        return float(meta.get("resolution") or meta.get("gsd") or 10)

    def search(self, bbox, start, end, conditions=None) -> list[pystac.Item]:
        self.ensure_loaded()
        if self.is_api:
            from terracube.data.stac_api import search_api

            items = search_api(self._client, self.stac_collection_id, bbox, start, end, conditions, self.settings)
        else:
            items = [item for item in self._items or [] if in_window(item, bbox, start, end)]
        self.check_assets(items)
        return items

    def check_assets(self, items: list[pystac.Item]) -> None:
        """The assets GDAL will read: none inside the server's network, none on its disk outside the allowed folders."""
        if self.guard is None:
            return
        for item in items:
            for key, asset in item.assets.items():
                if not _is_raster(key, asset):
                    continue
                scheme = urlparse(asset.href).scheme.lower()
                if scheme in ("http", "https"):
                    self.guard.check(asset.href)
                elif scheme in ("", "file") or len(scheme) == 1:
                    check_location(asset.href, self.settings)
                else:
                    # s3://, gs://, ... GDAL would read with the server's own credentials (or ask the
                    # cloud's metadata service for them), out of the fetch guard's sight.
                    raise ProcessParameterInvalid(
                        f"load_stac: the asset '{key}' of item '{item.id}' is at a '{scheme}://' URL; the assets of a "
                        "STAC document given by URL are read over http(s) only."
                    )


def check_location(url: str, settings: Settings, process: str = "load_stac") -> str:
    """The location to read: a URL, or a local path inside the directories the server allows."""
    if not isinstance(url, str) or not url.strip():
        raise ProcessParameterInvalid(f"{process}: 'url' must be the URL of a STAC Item, Collection or Catalog.")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return url
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and url[1:3] in (":\\", ":/")):
        path = Path(url)
    else:
        raise ProcessParameterInvalid(f"{process}: URLs with scheme '{parsed.scheme}' are not supported; use http(s).")
    # Of the data directory only the sample archive: the rest is the users' files and results and the
    # server's database and keys, which one user must not reach (nor probe) through a path.
    allowed = [Path(d) for d in (settings.sample_dir, *settings.load_stac_local_dirs) if d]
    resolved = path.expanduser().resolve()
    if not any(resolved.is_relative_to(directory.expanduser().resolve()) for directory in allowed):
        raise ProcessParameterInvalid(
            f"{process}: the local path {url} is outside the directories this server reads from; give an http(s) URL."
        )
    return str(resolved)


def _link(document: dict, rel: str) -> str | None:
    for link in document.get("links", []):
        if isinstance(link, dict) and link.get("rel") == rel and link.get("href"):
            return link["href"]
    return None


def _item(document: dict, location: str) -> pystac.Item:
    item = pystac.Item.from_dict(document, migrate=True)
    if not item.get_self_href():
        item.set_self_href(location)
    return item


def _is_raster(key: str, asset: pystac.Asset) -> bool:
    roles = asset.roles or ["data"]
    if "data" not in roles:
        return False
    if asset.media_type:
        return asset.media_type.split(";")[0].strip() in _RASTER_TYPES
    return urlparse(asset.href).path.endswith(_RASTER_SUFFIXES)


def _band_names(key: str, asset: pystac.Asset) -> list[str | None]:
    fields = asset.extra_fields
    for list_key in ("bands", "raster:bands", "eo:bands"):
        entries = fields.get(list_key)
        if isinstance(entries, list) and entries:
            return [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    return [None]


def _stem(key: str) -> str:
    return re.sub(r"\.(tiff?|jp2)$", "", key, flags=re.IGNORECASE)


def _bands_of(items: list[pystac.Item]) -> list[dict]:
    """The openEO bands of the items: ``{"name", "asset", "gsd", "resolution", "dates"}``.

    ``asset`` is the odc-stac band key (``key`` or ``key.N``); a band whose name is dated
    (``2021-07-21_B04``) lists its ``(date, band key)`` pairs under ``dates`` instead.
    """
    raster = {key: asset for item in items for key, asset in item.assets.items() if _is_raster(key, asset)}
    if any(a.media_type and "tiff" in a.media_type for a in raster.values()):
        raster = {k: a for k, a in raster.items() if not (a.media_type and "jp2" in a.media_type)}  # COGs over JPEG 2000 twins
    same_crs = shared_crs(items) is not None
    bands: dict[str, dict] = {}
    for key, asset in raster.items():
        names = _band_names(key, asset)
        resolution = _resolution(asset, same_crs)
        for index, name in enumerate(names, start=1):
            band_key = key if len(names) == 1 else f"{key}.{index}"
            label = name if name and name != "band_1" else (_stem(key) if len(names) == 1 else band_key)
            dated = _DATED.match(label)
            if dated and len(names) > 0:
                day, base = dated[1], dated[2] or _stem(key)
                entry = bands.setdefault(base, {"name": base, "asset": band_key, "gsd": resolution, "resolution": resolution, "dates": []})
                if (day, band_key) not in entry["dates"]:
                    entry["dates"].append((day, band_key))
            else:
                bands.setdefault(label, {"name": label, "asset": band_key, "gsd": resolution, "resolution": resolution})
    return list(bands.values())


def _resolution(asset: pystac.Asset, same_crs: bool) -> float | None:
    fields = asset.extra_fields
    owner = asset.owner.properties if isinstance(asset.owner, pystac.Item) else {}
    transform = fields.get("proj:transform") or owner.get("proj:transform")
    if same_crs and transform:
        return abs(float(transform[0]))
    for entries in (fields.get("raster:bands"), fields.get("bands")):
        if isinstance(entries, list) and entries and isinstance(entries[0], dict) and entries[0].get("spatial_resolution"):
            return float(entries[0]["spatial_resolution"])
    return fields.get("gsd") or owner.get("gsd") or (abs(float(transform[0])) if transform else None)


def _collection_for(items: list[pystac.Item]) -> pystac.Collection:
    boxes = [item.bbox for item in items if item.bbox]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)] if boxes else [-180, -90, 180, 90]
    times = [t for item in items for t in _times(item)]
    return pystac.Collection(
        "load_stac", "Items read by load_stac",
        pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[min(times) if times else None, max(times) if times else None]])),
    )


def _times(item: pystac.Item):
    from terracube.data.catalog import item_interval

    return [t for t in item_interval(item) if t is not None]


def _configured(url: str, catalog: Any):
    """The collections-file entry whose archive the URL is in: its credentials, GDAL options and signing apply."""
    for source in (catalog.sources() if catalog is not None and hasattr(catalog, "sources") else []):
        config = source.config
        if config is not None and _within(url, config.stac_url):
            return config.model_copy(update={"bands": [], "harmonize_baseline": False})
    return None


def _within(url: str, base: str) -> bool:
    """Whether ``url`` is under the archive at ``base``: the same scheme, host and port, and a path
    below base's, so that ``http://stac.internal.evil.example`` is not taken for ``http://stac.internal``
    (the archive is trusted, with its credentials, and its URLs are not checked by the fetch guard)."""
    if not isinstance(url, str):
        return False
    mine, theirs = urlparse(url), urlparse(base)
    if (mine.scheme.lower(), mine.netloc.lower()) != (theirs.scheme.lower(), theirs.netloc.lower()):
        return False
    prefix = theirs.path.rstrip("/")
    return mine.path == prefix or mine.path.startswith(prefix + "/")


def load_stac(
    url: str,
    spatial_extent: dict | None = None,
    temporal_extent: list | None = None,
    bands: list[str] | None = None,
    properties: dict | None = None,
    *,
    env: ProcessEnv,
):
    source = StacUrlSource(url, env.settings, _configured(url, env.catalog))
    _check_extent(spatial_extent)
    source.ensure_loaded()
    _check_bands(source, bands)
    names = list(bands) if bands else source.band_names
    bbox, start, end = request_window(spatial_extent, temporal_extent)
    dated = [name for name in names if source._band(name).get("dates")]
    if not dated:
        if env.grid is not None:
            geobox, bbox = tile_window(env.grid, spatial_extent)
        items = find_items(source, bbox, start, end, properties, temporal_extent)
        if env.grid is None:
            geobox = request_grid(source, items, spatial_extent, bbox, names)
        check_size(env, len(items), names, geobox)
        return read_cube(source, items, {name: source.asset_key(name) for name in names}, geobox, env)
    return _load_dated(source, names, spatial_extent, temporal_extent, bbox, start, end, properties, env)


def _load_dated(source: StacUrlSource, names, spatial_extent, temporal_extent, bbox, start, end, properties, env: ProcessEnv):
    """Bands named ``<date>_<band>`` (a saved multi-date cube): one read per date, labelled with that date."""
    items = find_items(source, bbox, None, None, properties, temporal_extent)
    by_day: dict[str, dict[str, str]] = defaultdict(dict)
    for name in names:
        meta = source._band(name)
        for day, band_key in meta.get("dates") or []:
            stamp = pd.Timestamp(day, tz="UTC")
            if (start is None or stamp >= start) and (end is None or stamp < end):
                by_day[day][name] = band_key
    if not by_day:
        raise NoDataAvailable(
            f"No dates of {redact(source.url)} fall between {temporal_extent[0] if temporal_extent else '-'} "
            f"and {temporal_extent[1] if temporal_extent else '-'}."
        )
    geobox = request_grid(source, items, spatial_extent, bbox, names)
    check_size(env, len(items) * len(by_day), names, geobox)
    cubes = []
    for day in sorted(by_day):
        assets = by_day[day]
        if list(assets) != [n for n in names if n in assets] or len(assets) != len(names):
            missing = [n for n in names if n not in assets]
            raise ProcessParameterInvalid(f"load_stac: {redact(source.url)} has no band(s) {missing} for {day}.")
        cube = read_cube(source, items, assets, geobox, env)
        if cube.sizes[DIM_T] > 1:  # several items of one result: one mosaic for the date
            cube = cube.max(dim=DIM_T, skipna=True, keep_attrs=True).expand_dims({DIM_T: 1})
        cubes.append(cube.assign_coords({DIM_T: [pd.Timestamp(day).to_datetime64()]}))
    cube = xr.concat(cubes, dim=DIM_T) if len(cubes) > 1 else cubes[0]
    cube.attrs = cubes[0].attrs
    return cube


__all__ = ["load_stac", "StacUrlSource", "StacUnreadable", "ArchiveUnavailable"]
