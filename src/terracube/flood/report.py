"""What the flood analysis tells a person: a difference raster, numbers, the largest damaged patches, a figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from scipy import ndimage


@dataclass
class NdviPair:
    before: np.ndarray
    after: np.ndarray
    profile: dict

    @property
    def difference(self) -> np.ndarray:
        return self.after - self.before

    @property
    def pixel_area_ha(self) -> float:
        transform = self.profile["transform"]
        return abs(transform.a * transform.e) / 10_000


def read_pair(before: Path, after: Path) -> NdviPair:
    with rasterio.open(before) as src:
        first = src.read(1, masked=True).filled(np.nan).astype("float32")
        profile = src.profile
    with rasterio.open(after) as src:
        second = src.read(1, masked=True).filled(np.nan).astype("float32")
        if src.shape != first.shape or src.transform != profile["transform"]:
            raise ValueError("The before and after NDVI rasters are not on the same grid.")
    return NdviPair(first, second, profile)


def write_difference(pair: NdviPair, path: Path) -> Path:
    profile = {**pair.profile, "driver": "COG", "dtype": "float32", "nodata": np.nan, "count": 1, "compress": "deflate"}
    profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None), profile.pop("interleave", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pair.difference.astype("float32"), 1)
        dst.set_band_description(1, "NDVI after - before")
    return path


def damaged_patches(pair: NdviPair, threshold: float, largest: int = 5) -> tuple[float, list[dict]]:
    """Hectares whose NDVI dropped by more than ``threshold``, and the largest connected patches."""
    difference = pair.difference
    damaged = np.isfinite(difference) & (difference < -threshold)
    labels, count = ndimage.label(damaged, structure=np.ones((3, 3)))
    if count == 0:
        return 0.0, []
    sizes = ndimage.sum_labels(damaged, labels, index=np.arange(1, count + 1))
    order = np.argsort(sizes)[::-1][:largest]
    centres = ndimage.center_of_mass(damaged, labels, index=[int(i) + 1 for i in order])
    to_wgs84 = Transformer.from_crs(pair.profile["crs"], "EPSG:4326", always_xy=True)
    patches = []
    for index, (row, col) in zip(order, centres):
        x, y = rasterio.transform.xy(pair.profile["transform"], row, col)  # the pixel's centre
        lon, lat = to_wgs84.transform(x, y)
        patches.append(
            {
                "area_ha": round(float(sizes[index]) * pair.pixel_area_ha, 2),
                "centre_lon": round(lon, 5),
                "centre_lat": round(lat, 5),
                "mean_ndvi_change": round(float(np.nanmean(difference[labels == index + 1])), 3),
            }
        )
    return round(float(damaged.sum()) * pair.pixel_area_ha, 2), patches


def plot(
    pair: NdviPair,
    path: Path,
    title: str,
    note: str | None,
    *,
    before: str = "NDVI before",
    after: str = "NDVI after",
    threshold: float | None = None,
    damaged_ha: float | None = None,
) -> Path:
    """Before, after and difference side by side: shared NDVI scale, diverging palette for the change.

    ``before`` and ``after`` title the two NDVI panels (the dates of the scenes used); with
    ``threshold`` the change panel outlines the damaged area and names its hectares, so the figure
    says on its own what the numbers in the summary say.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    transform = pair.profile["transform"]
    height, width = pair.before.shape
    extent_km = [transform.c / 1000, (transform.c + width * transform.a) / 1000, (transform.f + height * transform.e) / 1000, transform.f / 1000]
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    for ax, data, label in ((axes[0], pair.before, before), (axes[1], pair.after, after)):
        image = ax.imshow(data, cmap="RdYlGn", vmin=-0.2, vmax=1.0, extent=extent_km)
        ax.set_title(label)
    figure.colorbar(image, ax=axes[:2], shrink=0.85, label="NDVI")
    limit = 0.8
    change = axes[2].imshow(pair.difference, cmap="RdBu", vmin=-limit, vmax=limit, extent=extent_km)
    bar = figure.colorbar(change, ax=axes[2], shrink=0.85, label="NDVI change")
    change_title = "NDVI change (after - before)"
    if threshold is not None:
        damaged = np.isfinite(pair.difference) & (pair.difference < -threshold)
        if damaged.any():
            # origin="upper" puts row 0 at the top, as imshow drew it.
            axes[2].contour(damaged.astype("uint8"), levels=[0.5], colors="black", linewidths=0.6, extent=extent_km, origin="upper")
        bar.ax.axhline(-threshold, color="black", linewidth=1.2)
        area = "" if damaged_ha is None else f": {damaged_ha:.1f} ha"
        change_title += f"\noutlined: drop by more than {threshold:g}{area}"
    axes[2].set_title(change_title)
    crs = pair.profile["crs"]
    for ax in axes:
        ax.set_xlabel(f"easting (km, {crs.to_string() if crs else ''})")
        ax.set_ylabel("northing (km)")
        ax.ticklabel_format(useOffset=False, style="plain")
    figure.suptitle(title, fontsize=12)
    if note:
        figure.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=9, color="firebrick")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
