"""One acquisition: the landscape on its day, seen through its clouds, at the bands' resolutions."""

from __future__ import annotations

import numpy as np

from terracube.data.sample.acquisitions import Acquisition
from terracube.data.sample.landscape import (
    BANDS_REFLECTANCE,
    SPECTRA,
    Landscape,
    smooth_noise,
    surface_reflectance,
    vegetation_share,
    WATER,
)

# Native resolution of every band of the L2A product (B10 is not in L2A).
BAND_GSD = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
    "B8A": 20, "B09": 60, "B11": 20, "B12": 20, "SCL": 20, "AOT": 20, "WVP": 20,
}
# Cloud shadows fall away from the sun (south-east at 10:30 UTC): 30 px east, 25 px south at 10 m.
SHADOW_SHIFT = (25, 30)


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return array
    h, w = array.shape[-2] // factor, array.shape[-1] // factor
    return array[..., : h * factor, : w * factor].reshape(*array.shape[:-2], h, factor, w, factor).mean(axis=(-3, -1))


def cloud_opacity(acquisition: Acquisition, shape: tuple[int, int]) -> np.ndarray:
    """0..1 cloud opacity with soft edges, covering about ``cloudiness`` of the area."""
    if acquisition.cloudiness <= 0:
        return np.zeros(shape, dtype="float32")
    rng = np.random.default_rng(acquisition.seed)
    field = smooth_noise(rng, shape, 90) + 0.35 * smooth_noise(rng, shape, 20)
    threshold = np.quantile(field[::8, ::8], 1 - acquisition.cloudiness)
    return np.clip((field - threshold) / 0.45, 0, 1).astype("float32")


def render(land: Landscape, acquisition: Acquisition, bands: tuple[str, ...] = tuple(BAND_GSD)) -> dict[str, np.ndarray]:
    """The bands of one scene as uint16 (uint8 for SCL) at their own resolution."""
    rng = np.random.default_rng(acquisition.seed + 1)
    # Red and NIR are always rendered: SCL is classified from them.
    reflectance = tuple(b for b in BANDS_REFLECTANCE if b in bands or b in ("B04", "B08"))
    ground = surface_reflectance(land, acquisition.day, reflectance)
    shape = ground.shape[1:]
    clouds = cloud_opacity(acquisition, shape)
    shadow = np.roll(clouds, SHADOW_SHIFT, axis=(0, 1))
    shadow[: SHADOW_SHIFT[0], :] = 0
    shadow[:, : SHADOW_SHIFT[1]] = 0
    shadow = shadow * (clouds < 0.2)
    ground *= 1 - 0.65 * shadow
    cloud_spectrum = np.array([SPECTRA["cloud"][BANDS_REFLECTANCE.index(b)] for b in reflectance], dtype="float32")[:, None, None]
    seen = ground * (1 - clouds) + cloud_spectrum * clouds
    seen *= 1 + 0.025 * rng.standard_normal(shape, dtype="float32")

    rendered: dict[str, np.ndarray] = {}
    for index, name in enumerate(reflectance):
        factor = BAND_GSD[name] // 10
        rendered[name] = np.clip(np.rint(block_mean(seen[index], factor)), 1, 20000).astype("uint16")
    rendered["SCL"] = scene_classification(land, acquisition, block_mean(clouds, 2), block_mean(shadow, 2), rendered["B04"], rendered["B08"], rng)
    aot = 110 + 25 * smooth_noise(rng, (shape[0] // 2, shape[1] // 2), 100)
    wvp = 1900 + 300 * smooth_noise(rng, (shape[0] // 2, shape[1] // 2), 150)
    rendered["AOT"] = np.clip(np.rint(aot), 1, None).astype("uint16")
    rendered["WVP"] = np.clip(np.rint(wvp), 1, None).astype("uint16")
    return {name: rendered[name] for name in bands}


def scene_classification(land, acquisition, clouds, shadow, red10, nir10, rng) -> np.ndarray:
    """SCL at 20 m: 3 shadow, 4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8/9 cloud, 10 cirrus."""
    red = block_mean(red10.astype("float32"), 2)
    nir = block_mean(nir10.astype("float32"), 2)
    ndvi = (nir - red) / (nir + red)
    water = block_mean((land.cover == WATER).astype("float32"), 2) > 0.5
    scl = np.where(ndvi > 0.4, 4, 5).astype("uint8")
    scl[water] = 6
    scl[rng.random(scl.shape) < 0.002] = 7
    scl[shadow > 0.3] = 3
    scl[(clouds > 0.05) & (clouds <= 0.35)] = 10
    scl[(clouds > 0.35) & (clouds <= 0.75)] = 8
    scl[clouds > 0.75] = 9
    return scl


__all__ = ["BAND_GSD", "render", "vegetation_share"]
