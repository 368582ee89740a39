"""The tutorial's process graph through the engine, in process: grid, values, pushdown."""

from __future__ import annotations

import numpy as np
import pytest

from terracube.data.catalog import Catalog, CollectionSource
from terracube.errors import NoDataAvailable
from terracube.execute import execute, request_env
from terracube.settings import Settings

from tests.conftest import AFTER, TUTORIAL_AOI, read_tutorial_ndvi
from tests.http_server import StaticServer


def tutorial_graph(period, aoi=TUTORIAL_AOI):
    """The graph the openEO client sends for the tutorial's download() (format GTiff)."""
    return {
        "process_graph": {
            "load": {
                "process_id": "load_collection",
                "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": aoi, "temporal_extent": period, "bands": ["B04", "B08"]},
            },
            "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
            "mean": {
                "process_id": "reduce_dimension",
                "arguments": {
                    "data": {"from_node": "ndvi"},
                    "dimension": "t",
                    "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}},
                },
            },
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}, "result": True},
        }
    }


def ndvi_file(catalog, settings, period, directory):
    execution = execute(tutorial_graph(period), request_env(settings, catalog, user_id=None), directory)
    [(path, media_type)] = execution.files
    assert media_type.startswith("image/tiff")
    return path


def test_after_request_lands_on_the_cdse_grid_with_plausible_ndvi(catalog, settings, tmp_path):
    ndvi = read_tutorial_ndvi(ndvi_file(catalog, settings, AFTER, tmp_path))
    valid = ndvi[np.isfinite(ndvi)]
    assert valid.size > 0.95 * ndvi.size
    # CDSE's real figure is 0.718; the simulated valley is calibrated to be close.
    assert 0.6 < valid.mean() < 0.8


def test_no_scene_in_the_window_is_no_data_available(catalog, settings, tmp_path):
    with pytest.raises(NoDataAvailable, match="SENTINEL2_L2A"):
        execute(tutorial_graph(["2030-01-01", "2030-01-02"]), request_env(settings, catalog, user_id=None), tmp_path)


def test_the_read_touches_only_the_window_and_dates_asked_for(data_dir, tmp_path):
    """Serve the archive over HTTP with range requests and count what the tutorial request reads."""
    sample = data_dir / "sample"
    with StaticServer(sample) as server:
        source = CollectionSource("SENTINEL2_L2A", lambda: f"{server.url}/catalog.json", "SENTINEL2_L2A")
        settings = Settings(data_dir=tmp_path / "unused")
        catalog = Catalog(settings, sources=[source])
        source.ensure_loaded()
        server.bytes_sent.clear()
        ndvi_file(catalog, settings, AFTER, tmp_path)
        read = dict(server.bytes_sent)
    images = {name: count for name, count in read.items() if name.endswith(".tif")}
    # Only the two requested bands of the one scene in the window were opened...
    assert images and all("20210721" in name for name in images), sorted(images)
    assert sorted(name.rsplit("/", 1)[-1] for name in images) == ["B04.tif", "B08.tif"]
    # ...and of those, only the part around the window (the tutorial box is ~12% of the archive's area).
    whole = sum((sample / name).stat().st_size for name in images)
    assert sum(images.values()) < 0.5 * whole, (sum(images.values()), whole)
