"""A small Sentinel-2 L2A archive shaped like Element 84's Earth Search ``sentinel-2-l2a`` (v1).

Two adjacent MGRS-like tiles in EPSG:32632 that overlap by 1 km (as real tiles overlap by 9.8 km),
four acquisition dates, Cloud-Optimized GeoTIFFs written with rasterio, and item JSON with Earth
Search's layout: asset keys ``red``, ``nir``, ``swir16``, ``scl`` (and the non-raster ``thumbnail``
and ``granule_metadata``), ``raster:bands``, ``proj:*``, ``eo:cloud_cover``, ``mgrs:*``,
``s2:processing_baseline`` and ``earthsearch:boa_offset_applied``.

Pixel values are a function of the position on the 10 m (or 20 m) grid, so where the tiles overlap
they hold the same values, as adjacent tiles of one pass do, and a test can compute what any
window must contain (``truth``). Each tile has a strip of nodata (0) on its side of the overlap,
as at a swath edge, so a mosaic has to take those pixels from the other tile.

| date       | tiles     | cloud | baseline | offset in the pixels          |
| ---------- | --------- | ----- | -------- | ----------------------------- |
| 2021-07-21 | west east | 5.2   | 03.01    | none                          |
| 2021-07-26 | west east | 85.0  | 03.01    | none (cloudy: values +50)     |
| 2022-07-21 | west east | 3.1   | 05.00    | +1000 (boa_offset_applied no) |
| 2022-07-26 | west      | 8.0   | 05.00    | none (boa_offset_applied yes) |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

CRS = "EPSG:32632"
NORTH = 5_602_000.0
SOUTH = 5_596_000.0
TILES = {"LB": (360_000.0, 366_000.0), "MB": (365_000.0, 371_000.0)}  # west, east edges; 1 km overlap
GRID_WEST = 360_000.0
NODATA_STRIP = {"LB": ("east", 300.0), "MB": ("west", 200.0)}  # metres of nodata on the overlap side
BANDS = {"red": 10, "nir": 10, "swir16": 20, "scl": 20}
FILES = {"red": "B04", "nir": "B08", "swir16": "B11", "scl": "SCL"}  # Earth Search's file names
REFLECTANCE = ("red", "nir", "swir16")
EARTH_SEARCH_BANDS = {
    "red": ("Red (band 4) - 10m", {"name": "red", "common_name": "red", "description": "Red (band 4)", "center_wavelength": 0.665, "full_width_half_max": 0.038}),
    "nir": ("NIR 1 (band 8) - 10m", {"name": "nir", "common_name": "nir", "description": "NIR 1 (band 8)", "center_wavelength": 0.842, "full_width_half_max": 0.145}),
    "swir16": ("SWIR 1 (band 11) - 20m", {"name": "swir16", "common_name": "swir16", "description": "SWIR 1 (band 11)", "center_wavelength": 1.61, "full_width_half_max": 0.143}),
    "scl": ("Scene classification map (SCL)", None),
}


@dataclass(frozen=True)
class Acquisition:
    day: str  # YYYYMMDD
    time: str  # HH:MM:SS.ffffff of the west tile
    platform: str
    orbit: int
    cloud: float
    baseline: str
    offset_in_pixels: bool
    offset_applied_flag: bool
    tiles: tuple[str, ...]
    bias: int = 0


ACQUISITIONS = (
    Acquisition("20210721", "10:36:31.024000", "sentinel-2b", 8, 5.2, "03.01", False, False, ("LB", "MB")),
    Acquisition("20210726", "10:36:29.511000", "sentinel-2a", 8, 85.0, "03.01", False, False, ("LB", "MB"), bias=50),
    Acquisition("20220721", "10:36:41.337000", "sentinel-2a", 8, 3.1, "05.00", True, False, ("LB", "MB")),
    Acquisition("20220726", "10:36:39.802000", "sentinel-2b", 8, 8.0, "05.00", False, True, ("LB",)),
)


def truth(band: str, x: np.ndarray, y: np.ndarray, bias: int = 0) -> np.ndarray:
    """The harmonised digital number of a band at pixel-centre coordinates (any grid, any window)."""
    gsd = BANDS[band]
    col = np.floor((x - GRID_WEST) / gsd).astype("int64")
    row = np.floor((NORTH - y) / gsd).astype("int64")
    if band == "red":
        value = 300 + (col * 7 + row * 3) % 900
    elif band == "nir":
        value = 2000 + (col * 5 + row * 11) % 2000
    elif band == "swir16":
        value = 1000 + (col * 3 + row * 7) % 1500
    else:
        return np.where((col // 20 + row // 20) % 5 == 0, 8, 4).astype("float64")  # vegetation with a few cloud patches
    return (value + bias).astype("float64")


def _pixels(tile: str, band: str, acquisition: Acquisition) -> np.ndarray:
    gsd = BANDS[band]
    west, east = TILES[tile]
    cols = int((east - west) / gsd)
    rows = int((NORTH - SOUTH) / gsd)
    x = west + gsd * (np.arange(cols) + 0.5)
    y = NORTH - gsd * (np.arange(rows) + 0.5)
    xx, yy = np.meshgrid(x, y)
    values = truth(band, xx, yy, acquisition.bias if band != "scl" else 0)
    if band == "scl" and acquisition.cloud > 50:
        values = np.where((xx // 1000 + yy // 1000) % 2 == 0, 9.0, values)  # cloud high probability
    if band in REFLECTANCE and acquisition.offset_in_pixels:
        values = values + 1000
    side, width = NODATA_STRIP[tile]
    empty = xx > east - width if side == "east" else xx < west + width
    return np.where(empty, 0, values).astype("uint8" if band == "scl" else "uint16")


def _bbox(west: float, east: float) -> list[float]:
    to_wgs84 = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    return [round(v, 6) for v in to_wgs84.transform_bounds(west, SOUTH, east, NORTH, densify_pts=21)]


def item_id(tile: str, acquisition: Acquisition) -> str:
    return f"S2{acquisition.platform[-1].upper()}_32U{tile}_{acquisition.day}_0_L2A"


def item_document(tile: str, acquisition: Acquisition, href_base: str) -> dict:
    """One item as Earth Search v1 serves it; asset hrefs are ``{href_base}/{item id}/{asset}.tif``."""
    west, east = TILES[tile]
    bbox = _bbox(west, east)
    day = acquisition.day
    seconds = -3.1 if tile == "MB" else 0.0  # the next tile of the pass is sensed a few seconds earlier
    hh, mm, ss = acquisition.time.split(":")
    when = f"{day[:4]}-{day[4:6]}-{day[6:]}T{hh}:{mm}:{float(ss) + seconds:09.6f}Z"
    identifier = item_id(tile, acquisition)
    product = (f"S2{acquisition.platform[-1].upper()}_MSIL2A_{day}T103629_N{acquisition.baseline.replace('.', '')}"
               f"_R{acquisition.orbit:03d}_T32U{tile}_{day}T134112.SAFE")
    assets = {}
    for band, gsd in BANDS.items():
        title, eo_band = EARTH_SEARCH_BANDS[band]
        raster = {"nodata": 0, "data_type": "uint8" if band == "scl" else "uint16", "spatial_resolution": gsd}
        if band != "scl":
            raster.update(bits_per_sample=15, scale=0.0001, offset=-0.1 if acquisition.offset_in_pixels else 0)
        asset = {
            "href": f"{href_base}/{identifier}/{FILES[band]}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": title,
            "gsd": gsd,
            "proj:shape": [int((NORTH - SOUTH) / gsd), int((east - west) / gsd)],
            "proj:transform": [gsd, 0, west, 0, -gsd, NORTH],
            "raster:bands": [raster],
            "roles": ["data", "reflectance"] if band != "scl" else ["data"],
        }
        if eo_band:
            asset["eo:bands"] = [eo_band]
        assets[band] = asset
    assets["thumbnail"] = {"href": f"{href_base}/{identifier}/thumbnail.jpg", "type": "image/jpeg", "title": "Thumbnail image", "roles": ["thumbnail"]}
    assets["granule_metadata"] = {"href": f"{href_base}/{identifier}/granule_metadata.xml", "type": "application/xml", "roles": ["metadata"]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": identifier,
        "properties": {
            "created": "2023-08-26T15:36:29.046Z",
            "platform": acquisition.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": acquisition.cloud,
            "proj:epsg": 32632,
            "mgrs:utm_zone": 32,
            "mgrs:latitude_band": "U",
            "mgrs:grid_square": tile,
            "grid:code": f"MGRS-32U{tile}",
            "view:sun_azimuth": 153.2,
            "view:sun_elevation": 58.9,
            "s2:degraded_msi_data_percentage": 0,
            "s2:nodata_pixel_percentage": 5.0,
            "s2:saturated_defective_pixel_percentage": 0,
            "s2:dark_features_percentage": 0.2,
            "s2:cloud_shadow_percentage": 0.4,
            "s2:vegetation_percentage": 61.3,
            "s2:not_vegetated_percentage": 20.1,
            "s2:water_percentage": 1.2,
            "s2:unclassified_percentage": 1.5,
            "s2:medium_proba_clouds_percentage": acquisition.cloud / 2,
            "s2:high_proba_clouds_percentage": acquisition.cloud / 2,
            "s2:thin_cirrus_percentage": 0.0,
            "s2:snow_ice_percentage": 0.0,
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": acquisition.baseline,
            "s2:product_uri": product,
            "s2:generation_time": f"{day[:4]}-{day[4:6]}-{day[6:]}T13:41:12.000000Z",
            "s2:datatake_id": f"GS2{acquisition.platform[-1].upper()}_{day}T103629_022806_N{acquisition.baseline}",
            "s2:datatake_type": "INS-NOBS",
            "s2:datastrip_id": f"S2{acquisition.platform[-1].upper()}_OPER_MSI_L2A_DS_2BPS_{day}T134112_S{day}T103627_N{acquisition.baseline}",
            "s2:granule_id": f"S2{acquisition.platform[-1].upper()}_OPER_MSI_L2A_TL_2BPS_{day}T134112_A022806_T32U{tile}_N{acquisition.baseline}",
            "s2:reflectance_conversion_factor": 0.968,
            "datetime": when,
            "s2:sequence": "0",
            "earthsearch:s3_path": f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/32/U/{tile}/{day[:4]}/{int(day[4:6])}/{identifier}",
            "earthsearch:payload_id": f"roda-sentinel2/workflow-sentinel2-to-stac/{identifier}",
            "earthsearch:boa_offset_applied": acquisition.offset_applied_flag,
            "processing:software": {"sentinel2-to-stac": "0.1.0"},
            "updated": "2023-08-26T15:36:29.046Z",
        },
        "geometry": {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]},
        "links": [
            {"rel": "license", "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"},
            {"rel": "derived_from", "href": f"https://earth-search.aws.element84.com/v1/collections/sentinel-2-l1c/items/{identifier.replace('L2A', 'L1C')}", "type": "application/geo+json"},
        ],
        "assets": assets,
        "bbox": bbox,
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "collection": "sentinel-2-l2a",
    }


def collection_document() -> dict:
    """The collection as Earth Search v1 describes ``sentinel-2-l2a`` (abridged)."""
    return {
        "type": "Collection",
        "id": "sentinel-2-l2a",
        "stac_version": "1.0.0",
        "title": "Sentinel-2 Level 2A",
        "description": "Global Sentinel-2 data from the Multispectral Instrument (MSI) onboard Sentinel-2",
        "keywords": ["sentinel", "earth observation", "esa"],
        "license": "proprietary",
        "providers": [
            {"name": "ESA", "roles": ["producer"], "url": "https://earth.esa.int/web/guest/home"},
            {"name": "Sinergise", "roles": ["processor"], "url": "https://registry.opendata.aws/sentinel-2/"},
            {"name": "AWS", "roles": ["host"], "url": "http://sentinel-pds.s3-website.eu-central-1.amazonaws.com/"},
            {"name": "Element 84", "roles": ["processor"], "url": "https://element84.com"},
        ],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [["2015-06-27T10:25:31.456000Z", None]]}},
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
            "view:off_nadir": [0],
            "sci:citation": ["Copernicus Sentinel data [Year]"],
            "eo:bands": [eo for _, eo in EARTH_SEARCH_BANDS.values() if eo],
        },
        "item_assets": {band: {"title": title, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"]}
                        for band, (title, _) in EARTH_SEARCH_BANDS.items()},
        "stac_extensions": ["https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"],
        "links": [{"rel": "license", "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"}],
    }


def build(root: Path) -> None:
    """Write every COG of the archive under ``root/{item id}/``."""
    for acquisition in ACQUISITIONS:
        for tile in acquisition.tiles:
            directory = root / item_id(tile, acquisition)
            directory.mkdir(parents=True, exist_ok=True)
            west, _ = TILES[tile]
            for band, gsd in BANDS.items():
                data = _pixels(tile, band, acquisition)
                with rasterio.open(directory / f"{FILES[band]}.tif", "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1,
                                   dtype=data.dtype, crs=CRS, transform=from_origin(west, NORTH, gsd, gsd), nodata=0,
                                   compress="deflate", blocksize=256) as dst:
                    dst.write(data, 1)


def items(href_base: str) -> list[dict]:
    return [item_document(tile, a, href_base) for a in ACQUISITIONS for tile in a.tiles]


def wgs84(x: float, y: float) -> tuple[float, float]:
    return Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(x, y)
