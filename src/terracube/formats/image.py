"""Pictures of cubes: PNG (with alpha for no-data) and JPEG, for map tiles and ``save_result``.

One band goes through a colormap (any of matplotlib's: ``viridis``, ``RdYlGn`` for NDVI,
``Greys``...) over a value range; three bands are red, green and blue, each stretched over its
own range with an optional gamma. No-data (NaN) is transparent in PNG and black in JPEG, which has
no alpha. The colours are exactly matplotlib's: a value ``v`` in range ``(low, high)`` is drawn
as ``matplotlib.colormaps[name]((v - low) / (high - low), bytes=True)``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FORMATS = ("png", "jpeg")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
# Defaults where a style gives no range: NDVI and other indices for one band, Sentinel-2 L2A digital
# numbers (reflectance x 10000) for true colour, as CDSE's Browser stretches them.
DEFAULT_RANGE = {1: (-1.0, 1.0), 3: (0.0, 3000.0)}
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Style:
    """How values become colours. ``ranges`` and ``gamma`` hold one entry for every band or one per band."""

    colormap: str = "viridis"
    ranges: tuple[tuple[float, float], ...] | None = None  # None: DEFAULT_RANGE for the band count
    gamma: tuple[float, ...] = (1.0,)
    low: float | None = None  # overrides every range's low end (a map's ``min`` query parameter)
    high: float | None = None

    def band_ranges(self, bands: int) -> list[tuple[float, float]]:
        ranges = self.ranges or (DEFAULT_RANGE.get(bands, (0.0, 1.0)),)
        ranges = ranges * bands if len(ranges) == 1 else ranges
        return [(self.low if self.low is not None else lo, self.high if self.high is not None else hi) for lo, hi in ranges]

    def problem(self, bands: int) -> tuple[str, str] | None:
        """(parameter, reason) when this style cannot draw ``bands`` bands; None when it can."""
        if bands not in (1, 3):
            return "bands", f"a picture is one band (through a colormap) or three (red, green, blue), not {bands}"
        if self.ranges is not None and len(self.ranges) not in (1, bands):
            return "range", f"{len(self.ranges)} ranges for {bands} band{'s' if bands > 1 else ''}: give one, or one per band"
        if len(self.gamma) not in (1, bands):
            return "gamma", f"{len(self.gamma)} values for {bands} band{'s' if bands > 1 else ''}: give one, or one per band"
        for low, high in self.band_ranges(bands):
            if not low < high:
                return "range", f"the low end {low:g} is not below the high end {high:g}"
        return None


def colormap_names() -> dict[str, str]:
    """matplotlib's colormaps by lower-case name (``rdylgn`` -> ``RdYlGn``), reversed ones (``_r``) included."""
    return _colormap_names()


@lru_cache(maxsize=1)
def _colormap_names() -> dict[str, str]:
    import matplotlib

    return {name.lower(): name for name in matplotlib.colormaps}


@lru_cache(maxsize=64)
def colormap_table(name: str) -> np.ndarray:
    """256 RGBA colours; entry ``i`` is what matplotlib draws for values in ``[i / 256, (i + 1) / 256)``."""
    import matplotlib

    colormap = matplotlib.colormaps[name]
    table = colormap((np.arange(256) + 0.5) / 256, bytes=True) if colormap.N == 256 else colormap(np.linspace(0, 1, 256), bytes=True)
    table.setflags(write=False)
    return table


def to_rgba(values: np.ndarray, style: Style) -> np.ndarray:
    """``values`` (bands, height, width), float with NaN for no-data, as (height, width, 4) uint8."""
    bands = values.shape[0]
    problem = style.problem(bands)
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    ranges = style.band_ranges(bands)
    gammas = style.gamma * bands if len(style.gamma) == 1 else style.gamma
    missing = np.isnan(values).any(axis=0)
    scaled = np.empty(values.shape, dtype=np.float32)
    for band, ((low, high), gamma) in enumerate(zip(ranges, gammas)):
        plane = scaled[band]
        np.subtract(values[band], low, out=plane)
        np.multiply(plane, 1.0 / (high - low), out=plane)
        np.clip(plane, 0.0, 1.0, out=plane)
        if gamma != 1.0:
            np.power(plane, 1.0 / gamma, out=plane)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    if bands == 1:
        index = np.minimum((scaled[0] * 256).astype(np.uint16), 255)
        rgba = colormap_table(style.colormap)[index]
    else:
        rgba = np.empty((*values.shape[1:], 4), dtype=np.uint8)
        rgba[..., :3] = np.rint(np.moveaxis(scaled, 0, -1) * 255)
        rgba[..., 3] = 255
    rgba[missing, 3] = 0
    return rgba


def encode(rgba: np.ndarray, image_format: str, quality: int = JPEG_QUALITY) -> bytes:
    """PNG (RGBA) or JPEG (RGB, no-data black; ``quality`` 1 to 95) bytes of a (height, width, 4) uint8 picture."""
    from PIL import Image

    buffer = io.BytesIO()
    if image_format == "jpeg":
        rgb = rgba[..., :3].copy()
        rgb[rgba[..., 3] == 0] = 0
        Image.fromarray(rgb, "RGB").save(buffer, "JPEG", quality=quality)
    else:
        # Level 1: the pixels compress nearly as well (colormapped fields) in a fraction of the time.
        Image.fromarray(rgba, "RGBA").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@lru_cache(maxsize=8)
def blank(size: int, image_format: str) -> bytes:
    """A tile with nothing on it: transparent (PNG), black (JPEG)."""
    return encode(np.zeros((size, size, 4), dtype=np.uint8), image_format)

