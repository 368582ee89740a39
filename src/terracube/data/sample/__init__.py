"""The embedded, simulated Sentinel-2 L2A archive of the Ahr valley (June-August 2021).

Built on first use, reproducibly from a seed, into ``<data dir>/sample`` as Cloud-Optimized
GeoTIFFs plus a static STAC catalog, and read back by the same STAC loading code as any real
archive. It is simulated, and says so in its metadata.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import pystac

from terracube.data.sample.acquisitions import Acquisition, acquisitions
from terracube.data.sample.landscape import SAMPLE_AREA, Area, landscape, river_centerline
from terracube.data.sample.scene import BAND_GSD, render
from terracube.data.sample.stac import BANDS, SAMPLE_COLLECTION_ID, SIMULATED_NOTE, collection, item
from terracube.data.sample.writer import write_scene

__all__ = ["ensure_sample_archive", "chosen_acquisitions", "build_archive", "river_centerline", "render_scene", "Area", "BANDS", "SAMPLE_COLLECTION_ID", "SEED"]

SEED = 2021
# Bump when the generator changes, so an archive built by an older version is rebuilt.
VERSION = "3"
COMPLETE_MARKER = ".complete"


def render_scene(acquisition: Acquisition, seed: int = SEED, area: Area = SAMPLE_AREA, bands: tuple[str, ...] = tuple(BAND_GSD)):
    return render(landscape(seed, area), acquisition, bands)


@functools.lru_cache(maxsize=1)
def _landscape(seed: int, area: Area):
    # The ground is the same on every day: each build process draws it once, not once per scene.
    return landscape(seed, area)


def _build_scene(args) -> tuple[Acquisition, dict, object]:
    acquisition, directory, seed, area, bands = args
    rendered = render(_landscape(seed, area), acquisition, tuple(dict.fromkeys((*bands, "SCL"))))
    shapes = write_scene(directory / acquisition.product_id, {name: rendered[name] for name in bands}, area)
    return acquisition, shapes, rendered["SCL"]


def chosen_acquisitions(days: str = "") -> list[Acquisition]:
    """The archive's acquisitions on ``days`` ("2021-06-13,2021-07-21"), all of them for an empty string."""
    every = acquisitions(SEED)
    wanted = {day.strip() for day in days.split(",") if day.strip()}
    if not wanted:
        return every
    chosen = [a for a in every if a.day.isoformat() in wanted]
    unknown = wanted - {a.day.isoformat() for a in chosen}
    if unknown:
        raise ValueError(f"sample_days: no acquisition on {', '.join(sorted(unknown))}; the archive has "
                         f"{', '.join(a.day.isoformat() for a in every)}")
    return chosen


def _marker(scenes: list[Acquisition] | None) -> str:
    # An archive of some days only says which: it is not complete for another choice of days.
    if scenes is None or scenes == acquisitions(SEED):
        return VERSION
    return VERSION + " " + ",".join(a.day.isoformat() for a in scenes)


def _is_complete(root: Path, scenes: list[Acquisition] | None = None) -> bool:
    marker = root / COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == _marker(scenes)


def ensure_sample_archive(
    root: Path,
    progress: Callable[[int, int], None] | None = None,
    area: Area = SAMPLE_AREA,
    scenes: list[Acquisition] | None = None,
    bands: tuple[str, ...] = tuple(BAND_GSD),
) -> Path:
    """Build the archive under ``root`` unless a complete one is there; return its catalog.json.

    The build goes into a temporary sibling directory that is renamed into place when complete,
    under a file lock, so a killed build or a concurrent caller never sees half an archive. The
    benchmarks build larger archives with the same generator through ``area``, ``scenes``, ``bands``.
    """
    root = Path(root)
    catalog_path = root / "catalog.json"
    if _is_complete(root, scenes):
        return catalog_path
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(root, scenes):
            return catalog_path
        # Leftovers of builds that were killed are removed; only a finished build is renamed into place.
        for stale in root.parent.glob(f"_{root.name}_building_*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = root.parent / f"_{root.name}_building_{os.getpid()}"
        try:
            _build(staging, progress, area, scenes or acquisitions(SEED), bands, _marker(scenes))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(root, ignore_errors=True)
        os.replace(staging, root)
    return catalog_path


def _build(staging: Path, progress, area: Area, scenes: list[Acquisition], bands: tuple[str, ...], marker: str) -> None:
    items_dir = staging / SAMPLE_COLLECTION_ID
    stac_collection = collection(area)
    done = 0
    if progress:
        progress(0, len(scenes))
    jobs = [(acquisition, items_dir, SEED, area, bands) for acquisition in scenes]
    # Two processes: the machine this must build on in under a minute has two cores.
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        for acquisition, shapes, scl in pool.map(_build_scene, jobs):
            stac_collection.add_item(item(acquisition, scl, shapes, area))
            done += 1
            if progress:
                progress(done, len(scenes))
    catalog = pystac.Catalog(
        id="terracube-sample",
        description="terracube's embedded archive. " + SIMULATED_NOTE,
        title="terracube sample archive (simulated)",
    )
    catalog.add_child(stac_collection)
    catalog.normalize_hrefs(str(staging) + os.sep)
    # Asset hrefs stay relative to each item, next to which the COGs were written.
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    (staging / COMPLETE_MARKER).write_text(marker)
