"""The simulated Ahr valley: land cover, the river, and how each surface looks on a given day.

Everything is generated on the 10 m grid of tile 32ULB over the archive's area from a fixed seed:
a river winding west to east on a valley floor with villages, grassland and fields, vineyards on the
south-facing slopes, forest on the rest, fields on the plateaus. A pixel's spectrum is a linear mix
of vegetation, soil, water and built-up spectra; seasons change the vegetation share, and after
the 14-15 July 2021 flood a corridor along the river turns to mud and debris and slowly recovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
from scipy import ndimage

RESOLUTION = 10.0


@dataclass(frozen=True)
class Area:
    """A box in EPSG:32632 on the 60 m grid of tile 32ULB, so 10, 20 and 60 m bands share its bounds."""

    west: float
    south: float
    east: float
    north: float

    @property
    def width(self) -> int:
        return int((self.east - self.west) / RESOLUTION)

    @property
    def height(self) -> int:
        return int((self.north - self.south) / RESOLUTION)


# The archive's area: 7.00-7.17 E, 50.49-50.57 N, snapped outward to 60 m (1236 x 924 px at 10 m).
SAMPLE_AREA = Area(358080.0, 5594700.0, 370440.0, 5603940.0)
WEST, SOUTH, EAST, NORTH = SAMPLE_AREA.west, SAMPLE_AREA.south, SAMPLE_AREA.east, SAMPLE_AREA.north

BANDS_REFLECTANCE = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
# Digital numbers (reflectance x 10000) of the pure surfaces, band by band in the order above.
SPECTRA = {
    "vegetation": (250, 320, 620, 300, 950, 2800, 3550, 4200, 4300, 1500, 1800, 800),
    "soil": (900, 1000, 1300, 1500, 1700, 1900, 2050, 2200, 2300, 900, 2900, 2400),
    "water": (600, 520, 460, 260, 210, 170, 150, 130, 120, 60, 60, 40),
    "built": (1100, 1150, 1250, 1300, 1400, 1500, 1580, 1650, 1700, 700, 2000, 1800),
    "cloud": (6200, 6300, 6200, 6100, 6150, 6200, 6250, 6300, 6300, 3000, 4200, 3200),
}
FLOOD_DAY = date(2021, 7, 15)

FOREST, VINEYARD, GRASSLAND, FIELD, VILLAGE, WATER = range(6)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-variance noise with patches of about ``scale_px`` pixels."""
    factor = max(1, int(scale_px // 4))
    coarse = rng.standard_normal((shape[0] // factor + 3, shape[1] // factor + 3)).astype("float32")
    coarse = ndimage.gaussian_filter(coarse, sigma=2.0)
    fine = ndimage.zoom(coarse, factor, order=1)[: shape[0], : shape[1]]
    return ((fine - fine.mean()) / (fine.std() + 1e-6)).astype("float32")


def river_y(x: np.ndarray) -> np.ndarray:
    """Northing of the river's centre line for eastings ``x``: a meandering west-east course."""
    u = (np.asarray(x, dtype="float64") - 358080.0) / 1000.0
    return 5599600.0 + 380.0 * np.sin(2 * np.pi * u / 3.3) + 170.0 * np.sin(2 * np.pi * u / 1.35 + 1.0)


def river_centerline(step: float = 10.0, area: Area = SAMPLE_AREA) -> np.ndarray:
    """The river as (x, y) points in EPSG:32632, west to east."""
    x = np.arange(area.west, area.east + step, step)
    return np.column_stack([x, river_y(x)])


@dataclass(frozen=True)
class Landscape:
    area: Area
    cover: np.ndarray  # land cover class per pixel
    river_distance: np.ndarray  # metres to the river's centre line
    flood_damage: np.ndarray  # 0..1, how hard the flood hit each pixel
    harvest_doy: np.ndarray  # day of year each field is harvested
    vigour: np.ndarray  # per-pixel variation of the vegetation share


@lru_cache(maxsize=2)
def landscape(seed: int = 2021, area: Area = SAMPLE_AREA) -> Landscape:
    rng = np.random.default_rng(seed)
    shape = (area.height, area.width)
    x = area.west + (np.arange(area.width) + 0.5) * RESOLUTION
    y = area.north - (np.arange(area.height) + 0.5) * RESOLUTION
    channel = np.zeros(shape, dtype=bool)
    rows = ((area.north - river_y(x)) / RESOLUTION).astype(int)
    inside = (rows >= 0) & (rows < area.height)
    channel[rows[inside], np.arange(area.width)[inside]] = True
    distance = ndimage.distance_transform_edt(~channel).astype("float32") * RESOLUTION
    north_of_river = y[:, None] > river_y(x)[None, :]

    floor_width = 280 + 120 * smooth_noise(rng, shape, 120)
    patches = smooth_noise(rng, shape, 40)
    slopes = smooth_noise(rng, shape, 60)
    plateau = smooth_noise(rng, shape, 80)
    cover = np.full(shape, FOREST, dtype="uint8")
    floor = distance < floor_width
    cover[floor & (patches > -0.2)] = GRASSLAND
    cover[floor & (patches > 0.7)] = FIELD
    # Vineyards on the south-facing slope above the floor, as along the real Ahr.
    cover[~floor & north_of_river & (distance < floor_width + 900) & (slopes > 0.1)] = VINEYARD
    cover[(distance > 1900) & (plateau > 0.2)] = FIELD
    cover[(distance > 1900) & (plateau > 1.1)] = GRASSLAND
    for centre_x, radius in ((359300, 330), (362900, 380), (365300, 300), (368800, 420)):
        near = (x[None, :] - centre_x) ** 2 + (y[:, None] - river_y(np.array([centre_x]))[0]) ** 2 < radius**2
        cover[near & (distance < floor_width + 150) & (patches > -1.2)] = VILLAGE
    cover[distance < 15] = WATER

    corridor = 60 + 190 * np.clip(0.5 + 0.5 * smooth_noise(rng, shape, 150), 0, 1)
    damage = np.clip((corridor - distance) / 40.0, 0, 1) * (distance < floor_width + 100)
    harvest = (196 + 30 * np.clip(smooth_noise(rng, shape, 50), -1.5, 1.5)).astype("int16")
    vigour = 0.04 * smooth_noise(rng, shape, 8)
    return Landscape(area, cover, distance, damage.astype("float32"), harvest, vigour)


def vegetation_share(land: Landscape, day: date) -> np.ndarray:
    """Share of green vegetation in each pixel on a day: the season, harvests and the flood."""
    doy = day.timetuple().tm_yday
    season = np.clip((doy - 152) / 90.0, 0, 1)  # 0 on 1 June, 1 at the end of August
    share = np.empty(land.cover.shape, dtype="float32")
    cover = land.cover
    share[cover == FOREST] = 0.95
    share[cover == VINEYARD] = 0.52 + 0.18 * season
    share[cover == GRASSLAND] = 0.86 - 0.08 * season
    fields = cover == FIELD
    share[fields] = np.where(land.harvest_doy[fields] <= doy, 0.18, 0.9)
    share[cover == VILLAGE] = 0.28
    share[cover == WATER] = 0.0
    share += land.vigour
    if day > FLOOD_DAY:
        recovery = min(0.45, (day - FLOOD_DAY).days / 100.0)
        share *= 1 - land.flood_damage * (1 - recovery)
    return np.clip(share, 0, 1)


def surface_reflectance(land: Landscape, day: date, bands: tuple[str, ...] = BANDS_REFLECTANCE) -> np.ndarray:
    """Clear-sky digital numbers, bands x rows x cols, as float32 at 10 m."""
    veg = vegetation_share(land, day)
    water = (land.cover == WATER).astype("float32")
    if day > FLOOD_DAY:
        # Muddy, fuller river after the flood.
        water = np.maximum(water, (land.river_distance < 30).astype("float32"))
    built = np.where(land.cover == VILLAGE, 0.6, 0.0).astype("float32") * (1 - land.flood_damage * 0.3)
    soil = np.clip(1 - veg - water - built, 0, 1)
    veg = veg * (1 - water)
    mixture = np.stack([veg, soil, water, built])
    columns = [BANDS_REFLECTANCE.index(band) for band in bands]
    spectra = np.array([SPECTRA[name] for name in ("vegetation", "soil", "water", "built")], dtype="float32")[:, columns]
    return np.einsum("kb,kyx->byx", spectra, mixture, optimize=True)
