"""What ``GET /service_types`` says: the XYZ and WMTS service types, their configuration and the
process parameters a service's graph may read to know the tile being drawn."""

from __future__ import annotations

from typing import Any

from terracube.services.render import CONFIGURATION


def _parameter(name: str, description: str, schema: dict, **extra: Any) -> dict:
    return {"name": name, "description": description, "schema": schema, **extra}


def _bbox_schema(crs: int) -> dict:
    edge = {"type": "number"}
    return {"type": "object", "subtype": "bounding-box", "required": ["west", "south", "east", "north", "crs"],
            "properties": {"west": edge, "south": edge, "east": edge, "north": edge, "crs": {"type": "integer", "enum": [crs]}}}


PROCESS_PARAMETERS = [
    _parameter("spatial_extent", "The tile's bounding box in WGS84 (EPSG:4326).", _bbox_schema(4326)),
    _parameter("spatial_extent_3857", "The tile's bounding box in Web Mercator (EPSG:3857), the tile grid's own CRS.", _bbox_schema(3857)),
    _parameter("tile_zoom", "The tile's zoom level.", {"type": "integer", "minimum": 0}),
    _parameter("tile_x", "The tile's column at its zoom level (from the west).", {"type": "integer", "minimum": 0}),
    _parameter("tile_y", "The tile's row at its zoom level (from the north).", {"type": "integer", "minimum": 0}),
]
TIME_PARAMETER = _parameter("time", "The date a WMTS client asks for (its TIME dimension), null when it asks for none.",
                            {"type": ["string", "null"], "format": "date-time", "subtype": "date-time"}, optional=True, default=None)
PARAMETER_NAMES = tuple(p["name"] for p in PROCESS_PARAMETERS) + ("time",)


def service_types_document() -> dict:
    """The body of ``GET /service_types``."""
    common = {"configuration": CONFIGURATION}
    return {
        "XYZ": {"title": "XYZ tiles", "description": "Web Mercator (EPSG:3857) tiles at {z}/{x}/{y}, as Leaflet, OpenLayers, "
                "MapLibre and QGIS load them.", **common, "process_parameters": PROCESS_PARAMETERS,
                "links": [{"href": "https://wiki.openstreetmap.org/wiki/Slippy_map_tilenames", "rel": "about", "title": "XYZ tiles"}]},
        "WMTS": {"title": "OGC Web Map Tile Service 1.0.0", "description": "The same tiles in the GoogleMapsCompatible tile matrix "
                 "set, with a TIME dimension when the process graph keeps dates.", **common,
                 "process_parameters": [*PROCESS_PARAMETERS, TIME_PARAMETER],
                 "links": [{"href": "https://www.ogc.org/standards/wmts", "rel": "about", "title": "OGC WMTS standard"}]},
    }
