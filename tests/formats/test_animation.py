"""save_result as GIF and MP4 time-lapses: frames read back with Pillow and ffmpeg, as anyone playing them would see them.

The first tests write known cubes directly; the last ones use the official client against a live
server (synchronously and in a batch job) whose limits are set low, so that both limits answer
with a 400 the client shows.
"""

from __future__ import annotations

import imageio_ffmpeg
import matplotlib
import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from openeo.rest import OpenEoApiError
from PIL import Image, ImageSequence

from terracube.errors import FormatUnsuitable, ProcessParameterInvalid
from terracube.formats import file_formats, output_format, write_result
from terracube.formats.animation import check_animation, date_text
from terracube.settings import Settings
from tests.conftest import TUTORIAL_AOI
from tests.formats.test_image_output import VALUES, cube_of
from tests.jobs.conftest import jobs_env, wait_for_status
from tests.live_server import LiveServer

RDYLGN = matplotlib.colormaps["RdYlGn"]
DATES = ["2021-06-03", "2021-06-13", "2021-07-21"]
# Each date's values: the same layout, shifted, so every frame differs and each value is known.
PLANES = [VALUES, np.flip(VALUES, axis=1), VALUES * 0.5]


def gif_frames(path) -> tuple[list[np.ndarray], list[int]]:
    """Every frame as the viewer composes it (RGBA), and each frame's duration in milliseconds."""
    with Image.open(path) as image:
        assert image.format == "GIF"
        frames = [(np.asarray(frame.convert("RGBA")), frame.info["duration"]) for frame in ImageSequence.Iterator(image)]
    return [f for f, _ in frames], [d for _, d in frames]


def mp4_frames(path) -> tuple[list[np.ndarray], dict]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3) for raw in reader], meta


def expected_colours(values: np.ndarray, low=-1.0, high=1.0) -> np.ndarray:
    return RDYLGN(np.clip((values - low) / (high - low), 0, 1), bytes=True)


def test_gif_and_mp4_are_listed_with_their_options():
    formats = file_formats()["output"]
    for name in ("GIF", "MP4"):
        assert formats[name]["gis_data_types"] == ["raster"]
        assert {"colormap", "range", "gamma", "fps", "date_label", "filename_prefix"} == set(formats[name]["parameters"])
    assert output_format("gif").media_type == "image/gif" and output_format("mp4").media_type == "video/mp4"


def test_a_gif_has_one_frame_per_date_in_date_order_coloured_through_the_colormap(tmp_path):
    # The cube's dates out of order: the frames still follow the calendar.
    cube = xr.concat([cube_of([PLANES[i]], dates=[DATES[i]]) for i in (2, 0, 1)], dim="t")
    assert list(cube.t.dt.strftime("%Y-%m-%d").values) != DATES
    [path] = write_result(cube, "GIF", {"colormap": "RdYlGn", "range": [-1, 1], "fps": 4, "date_label": False}, tmp_path)
    assert path.name == "openEO.gif"
    frames, durations = gif_frames(path)
    assert len(frames) == len(DATES) and durations == [250] * len(DATES)
    for frame, values in zip(frames, PLANES):
        assert frame.shape == (*VALUES.shape, 4)
        data = np.isfinite(values)
        np.testing.assert_array_equal(frame[data], expected_colours(values[data]))
        assert (frame[~data][:, 3] == 0).all(), "no-data is transparent in every frame"


def test_frames_are_north_up_and_computed_in_batches(tmp_path, monkeypatch):
    import terracube.formats.animation as animation

    monkeypatch.setattr(animation, "BATCH_VALUES", 2 * VALUES.size)  # two dates a computation: batches of 2 and 1
    south_up = xr_concat_dates(PLANES).isel(y=slice(None, None, -1))
    assert south_up.y.values[0] < south_up.y.values[-1]
    [path] = write_result(south_up, "GIF", {"colormap": "RdYlGn", "range": [-1, 1], "date_label": False}, tmp_path)
    frames, _ = gif_frames(path)
    assert len(frames) == 3
    for frame, values in zip(frames, PLANES):
        data = np.isfinite(values)
        np.testing.assert_array_equal(frame[data], expected_colours(values[data]))


def test_without_a_range_one_scale_holds_for_every_frame(tmp_path):
    cube = xr_concat_dates([VALUES, VALUES * 0.5])
    [path] = write_result(cube, "GIF", {"colormap": "RdYlGn", "date_label": False}, tmp_path)
    frames, _ = gif_frames(path)
    # The whole cube spans -1..1: the second date's 0.5 is drawn as 0.5, not stretched to its own maximum.
    second = VALUES * 0.5
    data = np.isfinite(second)
    np.testing.assert_array_equal(frames[1][data], expected_colours(second[data]))


def xr_concat_dates(planes):
    return xr.concat([cube_of([plane], dates=[date]) for plane, date in zip(planes, DATES)], dim="t")


def test_each_frame_shows_its_date(tmp_path):
    big = np.tile(np.linspace(-1, 1, 200, dtype=np.float32), (120, 1))
    cube = xr_concat_dates([big, -big])
    [plain] = write_result(cube, "GIF", {"colormap": "RdYlGn", "range": [-1, 1], "date_label": False}, tmp_path / "plain")
    [labelled] = write_result(cube, "GIF", {"colormap": "RdYlGn", "range": [-1, 1]}, tmp_path / "labelled")
    without, _ = gif_frames(plain)
    with_label, _ = gif_frames(labelled)
    for a, b in zip(without, with_label):
        changed = (a != b).any(axis=-1)
        rows, cols = np.nonzero(changed)
        # The label is a box in the lower left corner, with white text; the picture elsewhere is unchanged.
        assert rows.min() > 120 * 0.7 and cols.max() < 200 * 0.6, (rows.min(), cols.max())
        assert (b[changed][:, :3] == 255).all(axis=-1).any()
    # The two labels differ (two dates), so the frames do too, even where the pictures would not.
    assert (with_label[0][100:] != with_label[1][100:]).any()


def test_a_cube_without_dates_is_one_frame_and_labels_say_the_time_when_not_midnight(tmp_path):
    [path] = write_result(cube_of([VALUES]), "GIF", {"colormap": "RdYlGn", "range": [-1, 1]}, tmp_path)
    frames, _ = gif_frames(path)
    assert len(frames) == 1
    assert date_text(np.datetime64("2021-07-21T00:00:00")) == "2021-07-21"
    assert date_text(np.datetime64("2021-07-21T10:30:24")) == "2021-07-21 10:30 UTC"


def test_three_bands_are_drawn_as_true_colour(tmp_path):
    red = np.full((40, 60), 3000.0, dtype=np.float32)
    green = np.tile(np.linspace(0, 3000, 60, dtype=np.float32), (40, 1))
    blue = np.zeros((40, 60), dtype=np.float32)
    cube = cube_of([red, green, blue], bands=["B04", "B03", "B02"], dates=DATES[:1])
    later = cube_of([red, np.flip(green, axis=1), blue], bands=["B04", "B03", "B02"], dates=DATES[1:2])
    [path] = write_result(xr.concat([cube, later], dim="t"), "GIF", {"range": [0, 3000], "date_label": False}, tmp_path)
    frames, _ = gif_frames(path)
    assert len(frames) == 2
    expected = np.rint(np.stack([red, green, blue], axis=-1) / 3000 * 255)
    assert np.abs(frames[0][..., :3].astype(int) - expected).max() <= 1
    assert np.abs(frames[1][..., :3].astype(int) - expected[:, ::-1]).max() <= 1


def test_identical_dates_without_labels_play_as_one_longer_frame(tmp_path):
    [path] = write_result(xr_concat_dates([VALUES, VALUES, -VALUES]), "GIF", {"date_label": False}, tmp_path)
    frames, durations = gif_frames(path)
    assert len(frames) == 2 and durations == [1000, 500], "Pillow merges a repeated frame; the animation plays the same"


def test_an_mp4_has_one_frame_per_date_at_the_chosen_speed(tmp_path):
    # Flat blocks of one value: H.264 is lossy (and halves the colour resolution), so colours are compared block by block.
    blocks = [np.kron(np.array([[-0.8, 0.0], [0.5, 0.9]], dtype=np.float32) * sign, np.ones((32, 48), dtype=np.float32))
              for sign in (1, -1, 0.5)]
    blocks[1][0:32, 0:48] = np.nan  # no-data is black in a video
    cube = xr_concat_dates(blocks)
    [path] = write_result(cube, "MP4", {"colormap": "RdYlGn", "range": [-1, 1], "fps": 5, "date_label": False}, tmp_path)
    assert path.name == "openEO.mp4"
    frames, meta = mp4_frames(path)
    assert len(frames) == len(DATES) and meta["fps"] == 5 and meta["size"] == (96, 64)
    for frame, values in zip(frames, blocks):
        for row in (16, 48):
            for col in (24, 72):
                value = values[row, col]
                shown = frame[row - 8:row + 8, col - 8:col + 8].reshape(-1, 3).mean(axis=0)
                wanted = (0, 0, 0) if np.isnan(value) else expected_colours(np.array([value]))[0, :3]
                assert np.abs(shown - wanted).max() < 12, (value, shown, wanted)


def test_an_odd_size_becomes_even_for_h264(tmp_path):
    [path] = write_result(xr_concat_dates([VALUES, VALUES]), "MP4", {"colormap": "viridis", "date_label": False}, tmp_path)
    frames, meta = mp4_frames(path)
    assert meta["size"] == (4, 4) and len(frames) == 2  # 4 × 3 values: one black row added


@pytest.mark.parametrize("options, option", [
    ({"fps": 0}, "fps"), ({"fps": 100}, "fps"), ({"fps": "fast"}, "fps"),
    ({"date_label": "yes"}, "date_label"), ({"quality": 80}, "quality"), ({"colormap": "rainbowish"}, "colormap"),
])
def test_bad_options_are_refused_before_anything_is_drawn(options, option):
    with pytest.raises(ProcessParameterInvalid) as error:
        output_format("GIF").check_options(options)
    assert f": {option}:" in error.value.message


def test_the_limits_are_checked_from_the_shape():
    settings = Settings(animation_max_frames=2, animation_max_frame_pixels=12)
    small = xr_concat_dates([VALUES, VALUES])
    check_animation(small, {}, settings, "gif")  # 2 frames of 4 × 3 pixels: at both limits, allowed
    with pytest.raises(FormatUnsuitable, match="limited to 2 frames on this server, but the data cube has 3 dates"):
        check_animation(xr_concat_dates(PLANES), {}, settings, "gif")
    with pytest.raises(FormatUnsuitable, match="limited to 10 pixels"):
        check_animation(small, {}, Settings(animation_max_frame_pixels=10), "mp4")
    with pytest.raises(FormatUnsuitable, match="one band .* or three"):
        check_animation(cube_of([VALUES, VALUES], dates=DATES[:1]), {}, settings, "gif")


# --- the official client against a live server ------------------------------------------------

MAX_FRAMES = 4
JUNE_START = ["2021-06-01", "2021-06-10"]  # 3, 6 and 8 June have at most 20 % cloud


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    # Tight limits: the tutorial's area (449 × 303 pixels) fits, the archive's whole extent does not.
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("animation"), TERRACUBE_ANIMATION_MAX_FRAMES=MAX_FRAMES,
                               TERRACUBE_ANIMATION_MAX_FRAME_PIXELS=200_000)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def con(server):
    return openeo.connect(server.url, default_timeout=300)


def ndvi(con, period, extent=TUTORIAL_AOI):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=extent, temporal_extent=period, bands=["B04", "B08"], max_cloud_cover=20)
    return cube.ndvi(nir="B08", red="B04")


def test_the_client_downloads_a_gif_whose_frames_are_the_ndvi_of_each_date(con, tmp_path):
    assert {"GIF", "MP4"} <= set(con.list_output_formats())
    style = {"colormap": "RdYlGn", "range": [-1, 1], "date_label": False}
    ndvi(con, JUNE_START).save_result(format="GIF", options=style).download(tmp_path / "ndvi.gif")
    ndvi(con, JUNE_START).download(tmp_path / "ndvi.tif", format="GTiff")
    with rasterio.open(tmp_path / "ndvi.tif") as tif:
        dates = [d.split("_")[0] for d in tif.descriptions]
        values = tif.read()
    assert dates == ["2021-06-03", "2021-06-06", "2021-06-08"]
    frames, durations = gif_frames(tmp_path / "ndvi.gif")
    assert len(frames) == len(dates) and durations == [500] * 3  # 2 frames a second by default
    for frame, plane in zip(frames, values):
        assert frame.shape[:2] == plane.shape == (303, 449)
        data = np.isfinite(plane)
        assert data.mean() > 0.5
        exact = (frame[data] == expected_colours(plane[data])).all(axis=-1)
        # Exact but for a colormap's rarest colours when a frame has all 256 (GIF holds 255 and no-data).
        assert exact.mean() > 0.99, exact.mean()
        assert (frame[~data][:, 3] == 0).all()
    assert not np.array_equal(frames[0], frames[1]), "each date has its own picture"


def test_a_batch_job_writes_an_mp4(con, tmp_path):
    cube = ndvi(con, JUNE_START).save_result(format="MP4", options={"colormap": "RdYlGn", "range": [-1, 1], "fps": 1,
                                                                       "filename_prefix": "ndvi"})
    job = cube.create_job(title="NDVI time-lapse")
    job.start_and_wait()
    [asset] = job.get_results().get_assets()
    assert (asset.key, asset.metadata["type"]) == ("ndvi.mp4", "video/mp4")
    asset.download(tmp_path / "ndvi.mp4")
    frames, meta = mp4_frames(tmp_path / "ndvi.mp4")
    assert len(frames) == 3 and meta["fps"] == 1 and meta["size"] == (450, 304)


def test_too_many_dates_answer_400_with_what_to_do(con, server, data_dir):
    summer = ndvi(con, ["2021-06-01", "2021-07-01"])  # 8 dates with at most 20 % cloud
    with pytest.raises(OpenEoApiError) as error:
        summer.download(format="GIF")
    assert (error.value.http_status_code, error.value.code) == (400, "FormatUnsuitable")
    assert f"limited to {MAX_FRAMES} frames" in error.value.message and "filter_temporal" in error.value.message
    # A batch job fails with the same error in its logs, before reading a pixel.
    job = summer.save_result(format="MP4").create_job(title="too long")
    job.start()
    assert wait_for_status(server.url, job.job_id, ("error", "finished"))["status"] == "error"
    assert any(f"limited to {MAX_FRAMES} frames" in entry.message for entry in job.logs())


def test_too_big_frames_answer_400(con):
    whole = {"west": 6.996, "south": 50.487, "east": 7.174, "north": 50.573}
    with pytest.raises(OpenEoApiError) as error:
        ndvi(con, ["2021-06-03", "2021-06-04"], whole).download(format="GIF")
    assert (error.value.http_status_code, error.value.code) == (400, "FormatUnsuitable")
    assert "limited to 200,000 pixels" in error.value.message and "resample_spatial" in error.value.message
