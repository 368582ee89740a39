"""The archive's STAC metadata: catalog, collection and one item per scene, CDSE band names."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pystac
from pyproj import Transformer
from shapely.geometry import box, mapping

from terracube.data.sample.acquisitions import END, START, Acquisition
from terracube.data.sample.landscape import SAMPLE_AREA, Area
from terracube.data.sample.scene import BAND_GSD

SAMPLE_COLLECTION_ID = "SENTINEL2_L2A"
SIMULATED_NOTE = (
    "SIMULATED DATA. This is not real Sentinel-2 imagery: terracube generates it, reproducibly from a "
    "seed, so that the 'Copernicus and openEO' tutorial runs offline. It mimics Sentinel-2 L2A over the "
    "Ahr valley (tile 32ULB), June-August 2021: the real product's band names, resolutions, units, grid "
    "and acquisition dates, a simulated landscape, clouds flagged in SCL, and the July 2021 flood as a "
    "damage corridor along the river. Do not use it for science."
)
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
# Declared as Earth Search and CDSE declare them: readers (odc-stac, terracube's own) trust the
# proj: grid of an asset only when the projection extension is named.
ITEM_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]

_WAVELENGTHS = {
    "B01": ("coastal", 0.443, 0.027), "B02": ("blue", 0.490, 0.098), "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038), "B05": ("rededge", 0.704, 0.019), "B06": ("rededge", 0.740, 0.018),
    "B07": ("rededge", 0.783, 0.028), "B08": ("nir", 0.842, 0.145), "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026), "B11": ("swir16", 1.610, 0.143), "B12": ("swir22", 2.190, 0.242),
}


def _band(name: str) -> dict:
    if name in _WAVELENGTHS:
        common, centre, width = _WAVELENGTHS[name]
        return {"name": name, "common_name": common, "center_wavelength": centre, "full_width_half_max": width,
                "gsd": BAND_GSD[name], "scale": 0.0001, "offset": 0, "type": "reflectance", "unit": "1"}
    descriptions = {"SCL": "Scene classification", "AOT": "Aerosol optical thickness", "WVP": "Water vapour"}
    return {"name": name, "description": descriptions[name], "gsd": BAND_GSD[name], "type": name.lower()}


BANDS = [_band(name) for name in BAND_GSD]


def wgs84_bbox(area: Area = SAMPLE_AREA) -> list[float]:
    transformer = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    return [round(v, 6) for v in transformer.transform_bounds(area.west, area.south, area.east, area.north, densify_pts=21)]


def collection(area: Area = SAMPLE_AREA) -> pystac.Collection:
    extent = pystac.Extent(
        pystac.SpatialExtent([wgs84_bbox(area)]),
        pystac.TemporalExtent([[datetime(START.year, START.month, START.day, tzinfo=timezone.utc),
                                datetime(END.year, END.month, END.day, 23, 59, 59, tzinfo=timezone.utc)]]),
    )
    result = pystac.Collection(
        id=SAMPLE_COLLECTION_ID,
        title="Sentinel-2 L2A, Ahr valley 2021 (SIMULATED)",
        description=SIMULATED_NOTE,
        extent=extent,
        license="CC0-1.0",
        keywords=["Sentinel-2", "L2A", "simulated", "Ahr", "flood", "tutorial"],
        providers=[pystac.Provider("terracube", roles=["producer", "processor", "host"], description="Generated, not observed.")],
        summaries=pystac.Summaries({
            "eo:bands": BANDS,
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
            "proj:epsg": [32632],
        }),
        extra_fields={"terracube:simulated": True},
    )
    result.extra_fields["item_assets"] = {
        name: {"type": COG_MEDIA_TYPE, "roles": ["data"], "title": name, "eo:bands": [_band(name)]} for name in BAND_GSD
    }
    return result


def item(acquisition: Acquisition, scl: np.ndarray, shapes: dict[str, tuple[int, int]], area: Area = SAMPLE_AREA) -> pystac.Item:
    bbox = wgs84_bbox(area)
    cloudy = np.isin(scl, (8, 9, 10)).mean() * 100
    properties = {
        "platform": acquisition.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "sat:relative_orbit": acquisition.relative_orbit,
        "sat:orbit_state": "descending",
        "eo:cloud_cover": round(float(cloudy), 2),
        "s2:mgrs_tile": "32ULB",
        "grid:code": "MGRS-32ULB",
        "processing:level": "L2A",
        "s2:processing_baseline": "03.01",
        "proj:code": "EPSG:32632",
        "proj:epsg": 32632,
        "terracube:simulated": True,
        "description": "Simulated scene (terracube sample archive): not a real observation.",
    }
    result = pystac.Item(acquisition.product_id, mapping(box(*bbox)), bbox, acquisition.datetime, properties,
                         stac_extensions=ITEM_EXTENSIONS, collection=SAMPLE_COLLECTION_ID)
    for name, shape in shapes.items():
        gsd = BAND_GSD[name]
        asset = pystac.Asset(
            f"./{name}.tif",
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            title=name,
            extra_fields={
                "gsd": gsd,
                "proj:shape": list(shape),
                "proj:transform": [gsd, 0.0, area.west, 0.0, -gsd, area.north],
                "proj:bbox": [area.west, area.south, area.east, area.north],
                "eo:bands": [_band(name)],
                "raster:bands": [{"nodata": 0, "data_type": "uint8" if name == "SCL" else "uint16", "spatial_resolution": gsd,
                                  **({"scale": 0.0001, "offset": 0} if name in _WAVELENGTHS else {})}],
            },
        )
        result.add_asset(name, asset)
    return result
