"""save_result as a picture: PNG and JPEG of a raster cube, drawn as map tiles are drawn.

A picture shows one image: one band through a colormap, or three bands as red, green and blue
(in the order of the cube's ``bands``). A cube with one time label is drawn at that date; one with
several is refused (``FormatUnsuitable``: reduce ``t`` first, or filter to one date), since a PNG
holds one image and choosing a date silently would hide data. The pixels are drawn by
``formats/image.py``, the same code as map tiles: no-data is transparent in PNG and black in JPEG.

The options follow map services' names (``colormap``, ``range``, ``gamma``) and also take the
Copernicus Data Space's PNG ``colormap``: an object of value → colour (an integer ``0xRRGGBBAA``
or ``[r, g, b, a]`` in 0..1), where each value takes the colour of the first key at or above it
and values above the last key are transparent (GeoTrellis' rule, which CDSE draws with), so a
classification written for CDSE is coloured here alike. Without a ``range`` the picture spans the
data's own minimum and maximum (per band for three bands). A picture has no georeference: use
GTiff for data, PNG and JPEG to look at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from terracube.cube import DIM_BANDS, DIM_T, DIM_X, DIM_Y, is_raster_cube
from terracube.errors import FormatUnsuitable, ProcessParameterInvalid
from terracube.formats.image import JPEG_QUALITY, Style, colormap_names, encode, to_rgba

_COLOUR = {"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": 4294967295},
    {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 3, "maxItems": 4},
]}

PARAMETERS: dict[str, dict] = {
    "colormap": {
        "type": ["string", "object", "null"], "default": None, "additionalProperties": _COLOUR,
        "description": "One band only. The name of a matplotlib colormap (case-insensitive: viridis, RdYlGn for NDVI, Greys, "
                       "magma...; `_r` reverses it), drawn over `range`; or an object of value to colour, as the Copernicus "
                       "Data Space takes it: {\"0\": [1, 0, 0, 1], \"1\": 4294967295}, each value coloured as the first key "
                       "at or above it, values above the last key transparent. Default: viridis.",
    },
    "range": {
        "type": ["array", "null"], "default": None, "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]},
        "description": "Values drawn from the first to the last colour (one band) or from black to full red, green, blue "
                       "(three bands): [low, high] for every band, or [[low, high], [low, high], [low, high]]. "
                       "Default: the data's own minimum and maximum, per band.",
    },
    "gamma": {
        "type": ["number", "array"], "default": 1, "items": {"type": "number"},
        "description": "Gamma correction after the range stretch, one value or one per band (1.5 brightens).",
    },
    "filename_prefix": {"type": "string", "description": "File name prefix, 'openEO' by default.", "default": "openEO"},
}
JPEG_PARAMETERS: dict[str, dict] = {
    **PARAMETERS,
    "quality": {"type": "integer", "minimum": 1, "maximum": 95, "default": JPEG_QUALITY,
                "description": "JPEG quality from 1 (smallest file) to 95 (best picture)."},
}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True)
class Picture:
    """The options of one picture, checked. ``breaks`` (value, RGBA) is a CDSE-style colormap; else ``colormap`` names one."""

    colormap: str | None = None  # None: viridis
    breaks: tuple[tuple[float, tuple[int, int, int, int]], ...] | None = None
    ranges: tuple[tuple[float, float], ...] | None = None
    gamma: tuple[float, ...] = (1.0,)
    quality: int = JPEG_QUALITY
    prefix: str = "openEO"


def _invalid(option: str, reason: str) -> ProcessParameterInvalid:
    return ProcessParameterInvalid(f"The value passed for parameter 'options' in process 'save_result' is invalid: {option}: {reason}.")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def picture_options(options: Mapping[str, Any] | None, image_format: str) -> Picture:
    """``save_result``'s options for PNG (``image_format`` "png") or JPEG ("jpeg"), checked; a bad one is the user's 400."""
    options = dict(options or {})
    known = JPEG_PARAMETERS if image_format == "jpeg" else PARAMETERS
    for name in options:
        if name not in known:
            raise _invalid(name, f"not an option of {image_format.upper()}; its options are {', '.join(known)}")
    values = {name: value for name, value in options.items() if value is not None}
    picture = {}
    colormap = values.get("colormap")
    if isinstance(colormap, str):
        name = colormap_names().get(colormap.lower())
        if name is None:
            raise _invalid("colormap", f"{_shown(colormap)} is not a colormap name (viridis, RdYlGn, Greys, magma, ...: matplotlib's)")
        picture["colormap"] = name
    elif isinstance(colormap, Mapping):
        picture["breaks"] = _breaks(colormap)
    elif colormap is not None:
        raise _invalid("colormap", f"{_shown(colormap)} is neither a colormap name nor an object of value to colour")
    if "range" in values:
        picture["ranges"] = _ranges(values["range"])
    if "gamma" in values:
        gamma = values["gamma"] if isinstance(values["gamma"], list) else [values["gamma"]]
        if not 1 <= len(gamma) <= 3 or not all(_number(g) and g > 0 for g in gamma):
            raise _invalid("gamma", f"{_shown(values['gamma'])} is not one positive number or one per band")
        picture["gamma"] = tuple(float(g) for g in gamma)
    if "quality" in values:
        quality = values["quality"]
        if not (_number(quality) and float(quality).is_integer() and 1 <= quality <= 95):
            raise _invalid("quality", f"{_shown(quality)} is not a whole number from 1 to 95")
        picture["quality"] = int(quality)
    if "filename_prefix" in values:
        prefix = values["filename_prefix"]
        if not isinstance(prefix, str) or not prefix or "/" in prefix or "\\" in prefix or prefix.startswith("."):
            raise _invalid("filename_prefix", f"{_shown(prefix)} is not a file name")
        picture["prefix"] = prefix
    return Picture(**picture)


def _breaks(colormap: Mapping[str, Any]) -> tuple[tuple[float, tuple[int, int, int, int]], ...]:
    if not colormap:
        raise _invalid("colormap", "the object of value to colour is empty")
    breaks = []
    for key, colour in colormap.items():
        try:
            value = float(key)
        except ValueError:
            raise _invalid("colormap", f"the key {_shown(key)} is not a number") from None
        breaks.append((value, _rgba(key, colour)))
    return tuple(sorted(breaks))


def _rgba(key: str, colour: Any) -> tuple[int, int, int, int]:
    """An integer 0xRRGGBBAA or [r, g, b(, a)] in 0..1, as the Copernicus Data Space's PNG colormap takes them."""
    if isinstance(colour, int) and not isinstance(colour, bool) and 0 <= colour <= 0xFFFFFFFF:
        return tuple(colour.to_bytes(4, "big"))  # type: ignore[return-value]
    if isinstance(colour, list) and len(colour) in (3, 4) and all(_number(c) and 0 <= c <= 1 for c in colour):
        channels = [round(c * 255) for c in colour] + ([255] if len(colour) == 3 else [])
        return tuple(channels)  # type: ignore[return-value]
    raise _invalid("colormap", f"the colour of {key} is {_shown(colour)}: give an integer 0xRRGGBBAA or [r, g, b, a] in 0..1")


def _ranges(value: Any) -> tuple[tuple[float, float], ...]:
    if isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value):
        pairs = [value]
    elif isinstance(value, list) and value and all(isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p) for p in value):
        pairs = value
    else:
        raise _invalid("range", f"{_shown(value)} is not [low, high] or one [low, high] per band")
    for low, high in pairs:
        if not low < high:
            raise _invalid("range", f"the low end {low:g} is not below the high end {high:g}")
    return tuple((float(low), float(high)) for low, high in pairs)


def check_png_options(options: Mapping[str, Any]) -> None:
    picture_options(options, "png")


def check_jpeg_options(options: Mapping[str, Any]) -> None:
    picture_options(options, "jpeg")


def check_drawable(cube, name: str, dims: tuple[str, ...]) -> None:
    """FormatUnsuitable unless the cube has only ``dims`` and one band (through a colormap) or three (RGB)."""
    others = [dim for dim in cube.dims if dim not in dims]
    if others:
        raise FormatUnsuitable(f"{name} draws {', '.join(dims[:-1])} and {dims[-1]} only; reduce the dimension{'s' if len(others) > 1 else ''} "
                               f"{', '.join(map(repr, others))} first.")
    bands = cube.sizes.get(DIM_BANDS, 1)
    if bands not in (1, 3):
        raise FormatUnsuitable(f"{name} draws one band (through a colormap) or three (red, green, blue), but the data cube has "
                               f"{bands} bands: {', '.join(map(str, cube[DIM_BANDS].values))}. Pick them with filter_bands.")


def picture_values(data: Any, image_format: str, compute: dict | None = None) -> np.ndarray:
    """The cube's pixels as (bands, height, width) float32, north up; FormatUnsuitable when they are no picture."""
    name = image_format.upper()
    if not is_raster_cube(data):
        raise FormatUnsuitable(f"{name} draws a raster data cube with x and y dimensions; use JSON for other values.")
    cube = data
    if DIM_T in cube.dims:
        if cube.sizes[DIM_T] != 1:
            dates = ", ".join(str(np.datetime_as_string(v, unit="D")) if isinstance(v, np.datetime64) else str(v)
                              for v in cube[DIM_T].values[:5])
            more = ", ..." if cube.sizes[DIM_T] > 5 else ""
            raise FormatUnsuitable(
                f"{name} holds one image, but the data cube has {cube.sizes[DIM_T]} labels on its temporal dimension "
                f"'{DIM_T}' ({dates}{more}). Reduce it first (reduce_dimension over '{DIM_T}', e.g. with max or mean), "
                f"pick one date with filter_temporal, or save as GTiff or netCDF."
            )
        cube = cube.isel({DIM_T: 0})
    check_drawable(cube, name, (DIM_BANDS, DIM_Y, DIM_X))
    cube = cube.transpose(DIM_BANDS, DIM_Y, DIM_X) if DIM_BANDS in cube.dims else cube.transpose(DIM_Y, DIM_X).expand_dims(DIM_BANDS)
    ys = cube[DIM_Y].values
    if len(ys) > 1 and ys[0] < ys[-1]:  # rows south to north: turn it north up, as a picture is looked at
        cube = cube.isel({DIM_Y: slice(None, None, -1)})
    # compute: a synchronous run's dask arguments (its cancellation check), as every writer takes them.
    return np.asarray(cube.compute(**(compute or {})).values, dtype=np.float32)


def draw(values: np.ndarray, picture: Picture) -> np.ndarray:
    """(bands, height, width) values as a (height, width, 4) uint8 picture."""
    bands = values.shape[0]
    if picture.breaks is not None:
        if bands != 1:
            raise _invalid("colormap", f"an object of value to colour colours one band, not {bands}")
        return _classify(values[0], picture.breaks)
    if picture.colormap is not None and bands != 1:
        raise _invalid("colormap", f"a colormap colours one band; {bands} bands are drawn as red, green and blue")
    style = Style(colormap=picture.colormap or "viridis", ranges=picture.ranges or _data_ranges(values), gamma=picture.gamma)
    problem = style.problem(bands)
    if problem is not None:
        raise _invalid(*problem)
    return to_rgba(values, style)


def _data_ranges(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Each band's minimum and maximum (a constant band spans [v, v + 1]; an empty one [0, 1])."""
    ranges = []
    for band in values:
        finite = band[np.isfinite(band)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        ranges.append((low, high if high > low else low + 1.0))
    return tuple(ranges)


def _classify(band: np.ndarray, breaks: tuple[tuple[float, tuple[int, int, int, int]], ...]) -> np.ndarray:
    """Each value coloured as the first break at or above it; above the last break and no-data: transparent."""
    limits = np.array([value for value, _ in breaks], dtype=np.float64)
    colours = np.array([colour for _, colour in breaks] + [(0, 0, 0, 0)], dtype=np.uint8)
    index = np.searchsorted(limits, band, side="left")
    index[np.isnan(band)] = len(breaks)
    return colours[index]


def write_picture(data: Any, directory: Path, options: dict, image_format: str, compute: dict | None = None) -> list[Path]:
    picture = picture_options(options, image_format)
    rgba = draw(picture_values(data, image_format, compute), picture)
    path = directory / f"{picture.prefix}.{EXTENSIONS[image_format]}"
    path.write_bytes(encode(rgba, image_format, quality=picture.quality))
    return [path]
