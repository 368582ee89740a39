"""Which CRS a load lands on when a collection has no single native one.

A collection like Earth Search's ``sentinel-2-l2a`` spans sixty UTM zones. A request lands on the
CRS its scenes share (so pixels are not resampled at all, the tile's own grid), and when the
scenes come from two zones, on the UTM zone of the request's centre, as CDSE does, with the
zone exceptions that the Sentinel-2 tiling follows (south-west Norway and Svalbard).
"""

from __future__ import annotations

from collections.abc import Iterable

import pystac


def utm_crs(bbox: tuple[float, float, float, float]) -> str:
    """The UTM zone of a WGS84 box's centre, as ``EPSG:326xx`` (north) or ``EPSG:327xx`` (south)."""
    lon = (bbox[0] + bbox[2]) / 2
    lat = (bbox[1] + bbox[3]) / 2
    lon = ((lon + 180) % 360) - 180 if not -180 <= lon <= 180 else lon
    zone = min(60, int((lon + 180) // 6) + 1)
    if 56 <= lat < 64 and 3 <= lon < 12:
        zone = 32  # south-west Norway
    elif 72 <= lat < 84 and 0 <= lon < 42:
        zone = 31 if lon < 9 else 33 if lon < 21 else 35 if lon < 33 else 37  # Svalbard
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def item_crs(item: pystac.Item) -> str | None:
    """An item's CRS from the projection extension (``proj:code`` or ``proj:epsg``), item or asset level."""
    candidates = [item.properties, *(asset.extra_fields for asset in item.assets.values())]
    for fields in candidates:
        code = fields.get("proj:code")
        if isinstance(code, str) and code:
            return code.upper()
        epsg = fields.get("proj:epsg")
        if epsg:
            return f"EPSG:{int(epsg)}"
    return None


def shared_crs(items: Iterable[pystac.Item]) -> str | None:
    """The CRS every item is in, or None when they differ or do not say."""
    found = {item_crs(item) for item in items}
    if len(found) == 1:
        (crs,) = found
        return crs
    return None
