"""``terracube flood`` end to end: files, grids, the flood signal, bad input, a remote backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from PIL import Image
from typer.testing import CliRunner

from terracube.cli import app
from terracube.data.sample import river_centerline

from tests.conftest import TUTORIAL_BOUNDS, TUTORIAL_SHAPE
from tests.live_server import LiveServer


@pytest.fixture()
def run(data_dir, monkeypatch):
    monkeypatch.setenv("TERRACUBE_DATA_DIR", str(data_dir))
    from terracube.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["flood", *args])
    get_settings.cache_clear()


def river_mask(src) -> np.ndarray:
    line = river_centerline()
    rows, cols = rasterio.transform.rowcol(src.transform, line[:, 0], line[:, 1])
    mask = np.zeros(src.shape, dtype=bool)
    for row, col in zip(rows, cols):
        if 0 <= row < src.height and 0 <= col < src.width:
            mask[max(row - 5, 0) : row + 6, max(col - 5, 0) : col + 6] = True
    return mask


def test_the_default_run_reproduces_the_tutorial_and_reports(run, tmp_path):
    result = run("--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Simulated data" in result.output and "ha" in result.output
    for name in ("ndvi_before.tif", "ndvi_after.tif", "ndvi_difference.tif"):
        with rasterio.open(tmp_path / name) as src:
            assert src.crs.to_epsg() == 32632 and (src.height, src.width) == TUTORIAL_SHAPE
            assert tuple(src.bounds) == TUTORIAL_BOUNDS
    with rasterio.open(tmp_path / "ndvi_difference.tif") as src:
        difference = src.read(1)
        near_river = river_mask(src)
    assert np.nanmean(difference[near_river]) < -0.3
    assert abs(np.nanmean(difference[~near_river])) < np.abs(np.nanmean(difference[near_river]))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["simulated_data"] is True
    assert summary["after"]["scenes"] == ["S2A_MSIL2A_20210721T103031_N0301_R008_T32ULB_20210721T134112"]
    # The figure and the summary name the days of the scenes used, not the periods' first days.
    assert summary["before"]["scene_dates"] == ["2021-06-13"] and summary["after"]["scene_dates"] == ["2021-07-21"]
    assert summary["archive_build_seconds"] is None  # the session's archive was there: nothing was built
    assert "Done in" in result.output
    assert summary["mean_ndvi_before"] > summary["mean_ndvi_after"]
    assert 20 < summary["damaged_area_ha"] < 0.5 * summary["area_ha"]
    assert summary["largest_damaged_patches"][0]["area_ha"] > 1
    image = Image.open(tmp_path / "flood_ndvi.png")
    assert image.size[0] > 1200 and image.size[1] > 400
    colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 100  # a picture, not a blank canvas


def test_auto_dates_pick_clear_scenes_around_the_event(run, tmp_path):
    result = run("--auto-dates", "10", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["before"]["period"][0] < "2021-07-15" <= summary["after"]["period"][0]
    assert summary["valid_pixel_fraction"] > 0.9


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bbox", "13.3,52.5,13.4,52.6"], "NoDataAvailable"),
        (["--before", "2021-06-14..2021-06-12"], "reversed"),
        (["--after", "2021-08-01..2021-08-02"], "NoDataAvailable"),
        (["--bbox", "7.1,50.5,7.0,50.6"], "west < east"),
        (["--backend", "http://127.0.0.1:9"], "failed"),
    ],
)
def test_bad_input_gets_a_clear_message_and_a_non_zero_exit(run, tmp_path, args, message):
    result = run(*args, "--out", str(tmp_path))
    assert result.exit_code != 0
    assert message in result.output


def test_the_same_analysis_runs_on_another_backend(run, data_dir, tmp_path):
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir)}).start()
    try:
        result = run("--backend", server.url, "--out", str(tmp_path / "remote"))
        assert result.exit_code == 0, result.output
        local = run("--out", str(tmp_path / "local"))
        assert local.exit_code == 0
    finally:
        server.stop()
    with rasterio.open(tmp_path / "remote" / "ndvi_after.tif") as remote, rasterio.open(tmp_path / "local" / "ndvi_after.tif") as here:
        assert np.allclose(remote.read(1), here.read(1), equal_nan=True)
