"""What the tile tests share: services over the sample archive, the source pixels under a tile's pixel,
and a count of the tiles really drawn (the graph evaluated), read through the public functions."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer

from terracube.execute import request_env
from terracube.services import grid, tiles
from terracube.services.model import Service
from terracube.settings import Settings

SCENES = Path("sample") / "SENTINEL2_L2A"
JULY_21 = ["2021-07-21", "2021-07-22"]


def load(bands, temporal_extent=JULY_21, spatial_extent=None) -> dict:
    return {"process_id": "load_collection",
            "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": spatial_extent, "temporal_extent": temporal_extent, "bands": bands}}


def ndvi_graph(temporal_extent=JULY_21, spatial_extent=None) -> dict:
    return {"process_graph": {"load": load(["B04", "B08"], temporal_extent, spatial_extent),
                              "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}, "result": True}}}


def bands_graph(bands, temporal_extent=JULY_21) -> dict:
    return {"process_graph": {"load": {**load(bands, temporal_extent), "result": True}}}


def service(process: dict, configuration: dict | None = None, type: str = "XYZ", version: int = 1, id: str | None = None) -> Service:
    return Service(id=id or uuid.uuid4().hex, user_id="alice", type=type, process=process, configuration=configuration or {}, version=version)


@pytest.fixture
def tile_settings(data_dir, tmp_path) -> Settings:
    return Settings(data_dir=data_dir, tile_cache_dir=tmp_path / "tiles")


@pytest.fixture
def env(tile_settings, catalog):
    return request_env(tile_settings, catalog, user_id=None)


@pytest.fixture
def draws(monkeypatch) -> list:
    """Every evaluation of a service's graph for a tile, as (z, x, y)."""
    seen = []
    draw = tiles._draw

    def counted(env, service, z, x, y, *args):
        seen.append((z, x, y))
        return draw(env, service, z, x, y, *args)

    monkeypatch.setattr(tiles, "_draw", counted)
    return seen


def picture(content: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(content))
    return np.asarray(image)


def scene_file(data_dir: Path, day: str, band: str) -> Path:
    (folder,) = [p for p in (data_dir / SCENES).iterdir() if p.is_dir() and f"_{day.replace('-', '')}T" in p.name]
    return folder / f"{band}.tif"


def tile_pixel_centres(z: int, x: int, y: int, size: int = 256):
    """The EPSG:3857 centres of a tile's pixels, as (xs, ys) along columns and rows."""
    (west, south, east, north), _ = grid.tile_bounds(z, x, y)
    step = (east - west) / size
    return west + (np.arange(size) + 0.5) * step, north - (np.arange(size) + 0.5) * step


def source_values(path: Path, xs: np.ndarray, ys: np.ndarray):
    """The raster's values (NaN for nodata) at points in EPSG:3857, and whether each point is safely
    inside a source pixel (not within 5 % of its edge, where nearest-neighbour rounding may go either way)."""
    with rasterio.open(path) as dataset:
        data = dataset.read(1).astype("float32")
        if dataset.nodata is not None:
            data[data == dataset.nodata] = np.nan
        to_utm = Transformer.from_crs("EPSG:3857", dataset.crs, always_xy=True)
        ux, uy = to_utm.transform(xs, ys)
        cols, rows = ~dataset.transform @ (np.asarray(ux), np.asarray(uy))
    inside = (rows >= 0) & (rows < data.shape[0]) & (cols >= 0) & (cols < data.shape[1])
    values = np.full(np.shape(xs), np.nan, dtype="float32")
    r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
    values[inside] = data[r[inside], c[inside]]
    fr, fc = rows - np.floor(rows), cols - np.floor(cols)
    safe = inside & (fr > 0.05) & (fr < 0.95) & (fc > 0.05) & (fc < 0.95)
    return values, safe, inside
