"""Run the flood analysis locally (terracube's engine) or on any openEO backend, then report."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import numpy as np

from terracube.flood.graph import SCL_MASKED_CLASSES, ndvi_graph
from terracube.flood.report import damaged_patches, plot, read_pair, write_difference

TUTORIAL_BBOX = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
TUTORIAL_BEFORE = ("2021-06-12", "2021-06-14")
TUTORIAL_AFTER = ("2021-07-20", "2021-07-22")


class FloodInputError(ValueError):
    """Bad input a user can fix: the message says how."""


@dataclass
class FloodRequest:
    bbox: dict = field(default_factory=lambda: dict(TUTORIAL_BBOX))
    before: tuple[str, str] = TUTORIAL_BEFORE
    after: tuple[str, str] = TUTORIAL_AFTER
    collection: str = "SENTINEL2_L2A"
    threshold: float = 0.2
    mask_clouds: bool = True
    out: Path = Path("flood")
    backend: str | None = None
    auth: str | None = None  # "oidc" or "basic" for a remote backend that needs a login

    def check(self) -> None:
        box = self.bbox
        if not (box["west"] < box["east"] and box["south"] < box["north"]):
            raise FloodInputError(f"The bbox must have west < east and south < north, got {box}.")
        for name, (start, end) in (("before", self.before), ("after", self.after)):
            if date.fromisoformat(start[:10]) >= date.fromisoformat(end[:10]):
                raise FloodInputError(f"The {name} period {start}..{end} is reversed or empty: the start must come before the end.")
        if not 0 < self.threshold < 2:
            raise FloodInputError("The threshold is an NDVI drop between 0 and 2.")


Progress = Callable[[str], None]


def run_graph_locally(graph: dict, target: Path, settings, catalog) -> Path:
    from terracube.execute import execute, request_env

    with tempfile.TemporaryDirectory() as tmp:
        # The flood graphs read the catalog only: no user, no uploaded files.
        execution = execute(graph, request_env(settings, catalog, user_id=None), Path(tmp))
        [(path, _media_type)] = execution.files
        shutil.move(path, target)
    return target


def run_graph_remotely(graph: dict, target: Path, backend: str, auth: str | None) -> Path:
    import openeo

    # The client's retries stay for answers that say "later" (429, 502-504); an address that refuses
    # connections fails at once instead of after half a minute of silent back-off.
    connection = openeo.connect(backend, retry={"connect": 0})
    if auth == "oidc":
        connection.authenticate_oidc()
    elif auth == "basic":
        connection.authenticate_basic()
    connection.download(graph, target)
    return target


def scenes_used(catalog, request: FloodRequest, period: tuple[str, str]) -> list[tuple[str, str]]:
    """(item id, acquisition day) of the scenes a period's graph reads, in time order."""
    from terracube.data.grid import bounds_in
    from terracube.processes.load import parse_instant

    source = catalog.get(request.collection)
    bbox = bounds_in(request.bbox, "EPSG:4326")
    items = source.search(bbox, parse_instant(period[0]), parse_instant(period[1]))
    return sorted(((item.id, item.datetime.date().isoformat() if item.datetime else "") for item in items), key=lambda scene: scene[1])


def panel_title(name: str, period: tuple[str, str], scenes: list[tuple[str, str]] | None) -> str:
    """A panel's title: the days of the scenes used, or the period asked for when they are unknown (a remote backend)."""
    days = sorted({day for _id, day in scenes or [] if day})
    if not days:
        return f"NDVI {name}: {period[0]} .. {period[1]} (end exclusive)"
    if len(days) <= 3:
        return f"NDVI {name}: {', '.join(days)}"
    return f"NDVI {name}: mean of {len(days)} days, {days[0]} .. {days[-1]}"


def clearest_day(catalog, request: FloodRequest, around: date, days: int, after_event: bool) -> tuple[str, str]:
    """The acquisition day with the least cloud and shadow over the area, on one side of the event.

    Each candidate's SCL is read over the area (at 20 m): scene-wide cloud cover says little about
    a valley of a few kilometres.
    """
    from terracube.execute import lazy_results, request_env

    start, end = (around, around + timedelta(days=days)) if after_event else (around - timedelta(days=days), around)
    load = {
        "process_id": "load_collection",
        "arguments": {"id": request.collection, "spatial_extent": request.bbox, "temporal_extent": [start.isoformat(), end.isoformat()], "bands": ["SCL"]},
        "result": True,
    }
    [loaded] = lazy_results({"process_graph": {"load": load}}, request_env(catalog.settings, catalog, user_id=None))
    scl = loaded.data.sel(bands="SCL").compute()
    valid = scl.notnull().sum(["x", "y"])
    cloudy = scl.isin(SCL_MASKED_CLASSES).sum(["x", "y"])
    fraction = (cloudy / valid.where(valid > 0)).fillna(1.0)
    best = np.datetime_as_string(fraction.idxmin("t").values, unit="D")
    day = date.fromisoformat(str(best))
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def run_flood(
    request: FloodRequest, settings=None, progress: Progress = lambda message: None, archive_build_seconds: float | None = None
) -> dict:
    """The analysis; ``archive_build_seconds`` (the sample archive built just before, if it was) goes into the summary."""
    request.check()
    started = time.perf_counter()
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    catalog = None
    if request.backend is None:
        from terracube.data.catalog import Catalog
        from terracube.settings import get_settings

        settings = settings or get_settings()
        catalog = Catalog(settings)
        catalog.get(request.collection)  # CollectionNotFound before any work
    paths = {}
    for name, period in (("before", request.before), ("after", request.after)):
        progress(f"NDVI {name} ({period[0]} .. {period[1]})")
        graph = ndvi_graph(request.collection, request.bbox, list(period), request.mask_clouds)
        target = out / f"ndvi_{name}.tif"
        if catalog is not None:
            paths[name] = run_graph_locally(graph, target, settings, catalog)
        else:
            paths[name] = run_graph_remotely(graph, target, request.backend, request.auth)
    progress("difference, damaged area and figure")
    pair = read_pair(paths["before"], paths["after"])
    write_difference(pair, out / "ndvi_difference.tif")
    damaged_ha, patches = damaged_patches(pair, request.threshold)
    simulated = catalog is not None and request.collection == "SENTINEL2_L2A" and _is_sample(catalog, request.collection)
    source = f"{request.collection} on {request.backend or 'terracube (local)'}"
    note = "Simulated data: terracube's embedded archive, not real Sentinel-2 observations." if simulated else None
    scenes = {name: scenes_used(catalog, request, period) if catalog else None for name, period in (("before", request.before), ("after", request.after))}
    plot(
        pair,
        out / "flood_ndvi.png",
        f"NDVI before and after — {source}" + ("" if request.mask_clouds else " — clouds not masked"),
        note,
        before=panel_title("before", request.before, scenes["before"]),
        after=panel_title("after", request.after, scenes["after"]),
        threshold=request.threshold,
        damaged_ha=damaged_ha,
    )
    valid = np.isfinite(pair.before) & np.isfinite(pair.after)
    summary = {
        "bbox": request.bbox,
        "area_ha": round(pair.before.size * pair.pixel_area_ha, 1),
        "crs": pair.profile["crs"].to_string(),
        "shape": list(pair.before.shape),
        "collection": request.collection,
        "backend": request.backend or "local",
        "simulated_data": simulated,
        **{
            name: {
                "period": list(period),
                "scenes": [scene_id for scene_id, _day in scenes[name]] if scenes[name] is not None else None,
                "scene_dates": [day for _id, day in scenes[name]] if scenes[name] is not None else None,
            }
            for name, period in (("before", request.before), ("after", request.after))
        },
        "cloud_masking": "SCL classes 3, 8, 9, 10 masked before the temporal mean" if request.mask_clouds
        else "none (as in the tutorial)",
        "valid_pixel_fraction": round(float(valid.mean()), 4),
        "mean_ndvi_before": round(float(np.nanmean(pair.before)), 4),
        "mean_ndvi_after": round(float(np.nanmean(pair.after)), 4),
        "threshold": request.threshold,
        "damaged_area_ha": damaged_ha,
        "largest_damaged_patches": patches,
        "processing_seconds": round(time.perf_counter() - started, 2),
        # The first local run builds the simulated archive before the analysis; null when it was there.
        "archive_build_seconds": None if archive_build_seconds is None else round(archive_build_seconds, 2),
        "files": {name: str(out / name) for name in ("ndvi_before.tif", "ndvi_after.tif", "ndvi_difference.tif", "flood_ndvi.png", "summary.json")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _is_sample(catalog, collection: str) -> bool:
    document = catalog.get(collection).ensure_loaded()
    return "simulated" in (document.description or "").lower()
