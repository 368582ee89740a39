"""PNG and JPEG results with the official client against a live server: synchronous, in a batch job, and refused."""

from __future__ import annotations

import matplotlib
import numpy as np
import openeo
import pytest
import rasterio
from openeo.rest import OpenEoApiError
from PIL import Image

from tests.conftest import AFTER, BEFORE, TUTORIAL_AOI
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer

NDVI_STYLE = {"colormap": "RdYlGn", "range": [-1, 1]}


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("pictures"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def con(server):
    return openeo.connect(server.url, default_timeout=300)


def ndvi(con, period=AFTER):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=period, bands=["B04", "B08"])
    return cube.ndvi(nir="B08", red="B04")


def test_the_client_downloads_the_ndvi_as_a_png_coloured_as_its_values(con, tmp_path):
    assert {"PNG", "JPEG"} <= set(con.list_output_formats())
    ndvi(con).download(tmp_path / "ndvi.png", format="PNG", options=NDVI_STYLE)
    ndvi(con).download(tmp_path / "ndvi.tif", format="GTiff")
    with rasterio.open(tmp_path / "ndvi.tif") as tif:
        values = tif.read(1)
    with Image.open(tmp_path / "ndvi.png") as image:
        assert image.format == "PNG" and image.size == (values.shape[1], values.shape[0])
        pixels = np.asarray(image.convert("RGBA"))
    finite = np.isfinite(values)
    assert finite.mean() > 0.9
    expected = matplotlib.colormaps["RdYlGn"]((values[finite] + 1) / 2, bytes=True)
    np.testing.assert_array_equal(pixels[finite], expected)
    assert (pixels[~finite][:, 3] == 0).all()


def test_a_batch_job_writes_a_jpeg(con, tmp_path):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B03", "B02"])
    job = cube.save_result(format="JPEG", options={"range": [0, 2000], "filename_prefix": "truecolour"}).create_job(title="true colour")
    job.start_and_wait(max_poll_interval=1)
    [asset] = job.get_results().get_assets()
    assert (asset.key, asset.metadata["type"]) == ("truecolour.jpg", "image/jpeg")
    asset.download(tmp_path / "truecolour.jpg")
    with Image.open(tmp_path / "truecolour.jpg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (449, 303))
        pixels = np.asarray(image).astype(int)
    green_land = (pixels[..., 1] >= pixels[..., 2]).mean()
    assert green_land > 0.5 and pixels.std() > 5, "a true-colour picture of a green valley, not a blank"


def test_several_dates_answer_400_with_what_to_do(con):
    two_dates = ndvi(con, [BEFORE[0], AFTER[1]])
    with pytest.raises(OpenEoApiError) as error:
        two_dates.download(format="PNG")
    assert (error.value.http_status_code, error.value.code) == (400, "FormatUnsuitable")
    assert "reduce_dimension" in error.value.message
    # Reduced to one image, the same cube draws.
    assert two_dates.reduce_dimension(dimension="t", reducer="max").download(format="PNG").startswith(b"\x89PNG")


def test_a_bad_option_is_refused_when_the_job_is_created(con):
    with pytest.raises(OpenEoApiError) as error:
        ndvi(con).save_result(format="PNG", options={"colormap": "rainbowish"}).create_job()
    assert (error.value.http_status_code, error.value.code) == (400, "ProcessParameterInvalid")
    assert "'rainbowish' is not a colormap name" in error.value.message
