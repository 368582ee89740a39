"""A map service's configuration and rendering options: what they may be, and how they are read.

The configuration is set when a service is created (JSON values); the rendering options in it
(``format``, ``colormap``, ``range``, ``gamma``) can be overridden per tile request by query
parameters (strings: ``?colormap=RdYlGn&range=-0.2,0.8``, or ``min``/``max``), so a map restyles
without a new service. Both are read by the same functions, and a bad value is a 400
``ServiceConfigInvalid`` naming the setting. The pixels themselves are drawn by ``formats.image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from terracube.formats.image import FORMATS, Style, colormap_names
from terracube.services.errors import ServiceConfigInvalid, ServiceConfigUnsupported

TILE_SIZES = (256, 512)
MAX_ZOOM = 24
# Query parameters a tile request may restyle with (the rest of the configuration is the service's).
TILE_OPTIONS = ("format", "colormap", "range", "min", "max", "gamma")

_BBOX = {
    "type": "object",
    "properties": {
        "west": {"type": "number", "description": "West (lower left corner, coordinate axis 1)."},
        "south": {"type": "number", "description": "South (lower left corner, coordinate axis 2)."},
        "east": {"type": "number", "description": "East (upper right corner, coordinate axis 1)."},
        "north": {"type": "number", "description": "North (upper right corner, coordinate axis 2)."},
        "crs": {"description": "EPSG code of the coordinates.", "type": "integer"},
    },
}
_NUMBERS = {"type": "array", "items": {"type": "number"}}

# The ``configuration`` of GET /service_types, the same for XYZ and WMTS.
CONFIGURATION: dict[str, dict] = {
    "tile_size": {"type": "integer", "enum": list(TILE_SIZES), "default": 256,
                  "description": "Width and height of a tile in pixels."},
    "min_zoom": {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM, "default": 0,
                 "description": "Lowest zoom level drawn. The server raises it where a tile would read more source pixels "
                                "than its budget allows (setting tile_max_source_pixels); the service's attributes say the zoom levels in effect."},
    "max_zoom": {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM, "default": 18, "description": "Highest zoom level drawn."},
    # No JSON Schema ``required`` here: in a resource parameter that key says whether the setting is.
    "extent": {"type": ["object", "null"], "default": None, "properties": _BBOX["properties"],
               "description": "Limit the layer to this bounding box (WGS84 unless crs says otherwise); tiles outside it are empty. "
                              "Default: the extent of the data the process graph loads."},
    "format": {"type": "string", "enum": list(FORMATS), "default": "png",
               "description": "png (transparent where there is no data) or jpeg (black there). Query parameter: format."},
    "colormap": {"type": "string", "default": "viridis",
                 "description": "For one band: the name of a matplotlib colormap (case-insensitive), e.g. viridis, RdYlGn (NDVI), "
                                "Greys, magma, Blues; `_r` reverses it. Query parameter: colormap."},
    "range": {"type": ["array", "null"], "default": None, "items": {"anyOf": [{"type": "number"}, _NUMBERS]},
              "description": "Values drawn from the first to the last colour (one band), or from black to full red, green, blue "
                             "(three bands): [low, high] for every band, or [[low, high], [low, high], [low, high]] per band. "
                             "Default: [-1, 1] for one band (indices such as NDVI), [0, 3000] for three (Sentinel-2 L2A "
                             "digital numbers). Query parameters: range=low,high (or six numbers), min, max."},
    "gamma": {"type": ["number", "array"], "default": 1, "items": {"type": "number"},
              "description": "Gamma correction after the range stretch, one value or one per band (1.2 brightens dark scenes). "
                             "Query parameter: gamma=1.2 or gamma=1.2,1.2,1.1."},
}


@dataclass(frozen=True)
class Rendering:
    """A tile's picture: its format and how values become colours. Hashable; ``key`` names it in the cache."""

    format: str = "png"
    style: Style = Style()

    def key(self) -> str:
        s = self.style
        return f"{self.format};{s.colormap};{s.ranges};{s.gamma};{s.low};{s.high}"


@dataclass(frozen=True)
class ServiceConfig:
    tile_size: int = 256
    min_zoom: int = 0
    max_zoom: int = 18
    extent: tuple[float, float, float, float] | None = None  # WGS84
    rendering: Rendering = Rendering()


def parse_configuration(configuration: Mapping[str, Any] | None) -> ServiceConfig:
    """A service's configuration, checked: unknown settings and bad values are the user's 400."""
    if configuration is None:
        configuration = {}
    if not isinstance(configuration, Mapping):
        raise ServiceConfigInvalid("configuration", "it must be an object of settings")
    for name in configuration:
        if name not in CONFIGURATION:
            raise ServiceConfigUnsupported(name)
    values = {name: value for name, value in configuration.items() if value is not None}
    tile_size = values.get("tile_size", 256)
    if _integer(tile_size) not in TILE_SIZES:
        raise ServiceConfigInvalid("tile_size", f"{tile_size!r} is not one of {', '.join(map(str, TILE_SIZES))}")
    zooms = {}
    for name in ("min_zoom", "max_zoom"):
        zoom = _integer(values.get(name, CONFIGURATION[name]["default"]))
        if zoom is None or not 0 <= zoom <= MAX_ZOOM:
            raise ServiceConfigInvalid(name, f"{values[name]!r} is not a zoom level from 0 to {MAX_ZOOM}")
        zooms[name] = zoom
    if zooms["min_zoom"] > zooms["max_zoom"]:
        raise ServiceConfigInvalid("min_zoom", f"{zooms['min_zoom']} is above max_zoom {zooms['max_zoom']}")
    rendering = restyle(Rendering(), {k: v for k, v in values.items() if k in ("format", "colormap", "range", "gamma")})
    return ServiceConfig(int(tile_size), zooms["min_zoom"], zooms["max_zoom"], _extent(values.get("extent")), rendering)


def restyle(rendering: Rendering, options: Mapping[str, Any]) -> Rendering:
    """``rendering`` with ``options`` applied: a configuration's JSON values, or a tile request's query strings."""
    style = rendering.style
    image_format = rendering.format
    for name, value in options.items():
        if name not in TILE_OPTIONS:
            raise ServiceConfigUnsupported(name)
        if name == "format":
            image_format = _format(value)
        elif name == "colormap":
            style = replace(style, colormap=_colormap(value))
        elif name == "range":
            style = replace(style, ranges=_ranges(value), low=None, high=None)
        elif name in ("min", "max"):
            number = _numbers(name, value)
            if len(number) != 1:
                raise ServiceConfigInvalid(name, f"{_shown(value)} is not one number")
            style = replace(style, **{"low" if name == "min" else "high": number[0]})
        elif name == "gamma":
            gamma = _numbers(name, value)
            if not 1 <= len(gamma) <= 3 or not all(g > 0 for g in gamma):
                raise ServiceConfigInvalid(name, f"{_shown(value)} is not one positive number or one per band")
            style = replace(style, gamma=gamma)
    if style.low is not None and style.high is not None and not style.low < style.high:
        raise ServiceConfigInvalid("min", f"min {style.low:g} is not below max {style.high:g}")
    return Rendering(image_format, style)


def check_bands(rendering: Rendering, bands: int) -> None:
    """ServiceConfigInvalid when ``rendering`` cannot draw a layer of ``bands`` bands."""
    problem = rendering.style.problem(bands)
    if problem is not None:
        raise ServiceConfigInvalid(*problem)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:59] + "…"


def _format(value: Any) -> str:
    name = str(value).lower().removeprefix("image/") if isinstance(value, str) else None
    name = "jpeg" if name == "jpg" else name
    if name not in FORMATS:
        raise ServiceConfigInvalid("format", f"{_shown(value)} is not one of {', '.join(FORMATS)}")
    return name


def _colormap(value: Any) -> str:
    name = colormap_names().get(value.lower()) if isinstance(value, str) else None
    if name is None:
        raise ServiceConfigInvalid("colormap", f"{_shown(value)} is not a colormap name (viridis, RdYlGn, Greys, magma, ...: matplotlib's)")
    return name


def _numbers(name: str, value: Any) -> tuple[float, ...]:
    """One number or several: a JSON number or flat list, or a query string ``1,2,3`` (brackets allowed)."""
    if isinstance(value, str):
        parts = [part for part in value.strip().strip("[]").split(",")]
        try:
            numbers = tuple(float(part) for part in parts)
        except ValueError:
            raise ServiceConfigInvalid(name, f"{_shown(value)} is not a comma-separated list of numbers") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        numbers = (float(value),)
    elif isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        numbers = tuple(float(v) for v in value)
    else:
        raise ServiceConfigInvalid(name, f"{_shown(value)} is not a number or a list of numbers")
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise ServiceConfigInvalid(name, f"{_shown(value)} is not a list of finite numbers")
    return numbers


def _ranges(value: Any) -> tuple[tuple[float, float], ...]:
    """[low, high], [[low, high], ...] or the flat [l1, h1, l2, h2, l3, h3]; ``low,high`` in a query."""
    if isinstance(value, list) and value and all(isinstance(pair, list) for pair in value):
        if not all(len(pair) == 2 for pair in value):
            raise ServiceConfigInvalid("range", f"{_shown(value)}: each range is [low, high]")
        flat = tuple(number for pair in value for number in _numbers("range", pair))
    else:
        flat = _numbers("range", value)
    if len(flat) not in (2, 6):
        raise ServiceConfigInvalid("range", f"{_shown(value)} is not [low, high] or three of them (one per band)")
    pairs = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
    for low, high in pairs:
        if not low < high:
            raise ServiceConfigInvalid("range", f"the low end {low:g} is not below the high end {high:g}")
    return pairs


def _extent(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    from terracube.data.grid import bounds_in

    edges = ("west", "south", "east", "north")
    if not isinstance(value, Mapping) or not all(isinstance(value.get(e), (int, float)) and not isinstance(value.get(e), bool) for e in edges):
        raise ServiceConfigInvalid("extent", "it must be a bounding box {west, south, east, north} with numbers")
    if not (value["west"] < value["east"] and value["south"] < value["north"]):
        raise ServiceConfigInvalid("extent", "west must be below east and south below north")
    try:
        west, south, east, north = bounds_in(dict(value), "EPSG:4326")
    except Exception as error:  # noqa: BLE001 - pyproj's many errors: the user's CRS is not usable
        raise ServiceConfigInvalid("extent", f"its crs is not usable: {error}") from None
    return (west, south, east, north)
