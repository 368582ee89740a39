"""save_result as PNG and JPEG: the files decoded with Pillow, as anyone opening them would see them."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros
from PIL import Image

from terracube.errors import FormatUnsuitable, ProcessParameterInvalid
from terracube.formats import file_formats, output_format, write_result

# NDVI-like values with a no-data pixel, in a known layout: row 0 is the north edge.
VALUES = np.array([[-1.0, -0.5, 0.0, 0.25],
                   [0.5, 0.75, 0.99, np.nan],
                   [1.0, 0.1, -0.2, 0.6]], dtype=np.float32)


def cube_of(planes: list[np.ndarray], bands: list[str] | None = None, dates: list[str] | None = None) -> xr.DataArray:
    """A cube on a UTM grid (y from north to south, as rasters come) with the given band planes and dates."""
    height, width = planes[0].shape
    geobox = GeoBox.from_bbox((362150, 5598160, 362150 + 10 * width, 5598160 + 10 * height), "EPSG:32632", resolution=10)
    template = xr_zeros(geobox, dtype="float32")
    layer = xr.concat([template + plane for plane in planes], dim="bands").assign_coords(bands=bands or [f"B{i}" for i in range(len(planes))])
    if dates is None:
        return layer
    return xr.concat([layer] * len(dates), dim="t").assign_coords(t=pd.to_datetime(dates))


def decoded(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def test_one_band_is_drawn_through_the_colormap_with_no_data_transparent(tmp_path):
    [path] = write_result(cube_of([VALUES]), "PNG", {"colormap": "RdYlGn", "range": [-1, 1]}, tmp_path)
    assert path.name == "openEO.png"
    with Image.open(path) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (4, 3))
    pixels = decoded(path)
    rdylgn = matplotlib.colormaps["RdYlGn"]
    for (row, col), value in np.ndenumerate(VALUES):
        if np.isnan(value):
            assert pixels[row, col, 3] == 0, "no-data is transparent"
        else:  # the documented rule: matplotlib's colour of (v - low) / (high - low)
            assert tuple(pixels[row, col]) == tuple(rdylgn((value + 1) / 2, bytes=True)), (row, col, value)


def test_a_single_date_is_drawn_and_the_range_defaults_to_the_data(tmp_path):
    [path] = write_result(cube_of([VALUES], dates=["2021-07-21"]), "png", {"colormap": "greys"}, tmp_path)
    pixels = decoded(path)
    greys = matplotlib.colormaps["Greys"]
    assert tuple(pixels[0, 0]) == tuple(greys(0.0, bytes=True))  # the minimum, -1: the first colour
    assert tuple(pixels[2, 0]) == tuple(greys(1.0, bytes=True))  # the maximum, 1: the last colour
    assert tuple(pixels[0, 2]) == tuple(greys(0.5, bytes=True))


def test_a_cube_stored_south_up_is_drawn_north_up(tmp_path):
    cube = cube_of([VALUES])
    flipped = cube.isel(y=slice(None, None, -1))
    assert flipped.y.values[0] < flipped.y.values[-1]
    [north_up] = write_result(cube, "PNG", {"range": [-1, 1]}, tmp_path / "a")
    [also] = write_result(flipped, "PNG", {"range": [-1, 1]}, tmp_path / "b")
    np.testing.assert_array_equal(decoded(north_up), decoded(also))


def test_three_bands_are_red_green_blue_each_over_its_range(tmp_path):
    red, green, blue = np.full((2, 2), 1500.0), np.full((2, 2), 3000.0), np.array([[0.0, 750.0], [np.nan, 6000.0]])
    cube = cube_of([red, green, blue], bands=["B04", "B03", "B02"])
    [path] = write_result(cube, "PNG", {"range": [[0, 3000], [0, 3000], [0, 1500]], "filename_prefix": "truecolour"}, tmp_path)
    assert path.name == "truecolour.png"
    pixels = decoded(path)
    assert tuple(pixels[0, 0]) == (128, 255, 0, 255)
    assert tuple(pixels[0, 1]) == (128, 255, 128, 255)
    assert pixels[1, 0, 3] == 0, "a pixel with a missing band is no-data"
    assert tuple(pixels[1, 1]) == (128, 255, 255, 255), "values beyond the range are clipped"
    [gamma] = write_result(cube, "PNG", {"range": [0, 3000], "gamma": 2}, tmp_path / "gamma")
    assert decoded(gamma)[0, 0, 0] == round(0.5 ** 0.5 * 255)


def test_jpeg_has_no_alpha_no_data_is_black(tmp_path):
    plane = np.full((16, 16), 0.8, dtype=np.float32)
    plane[:8, :8] = np.nan
    [path] = write_result(cube_of([plane]), "JPG", {"colormap": "RdYlGn", "range": [-1, 1], "quality": 95}, tmp_path)
    assert path.name == "openEO.jpg"
    with Image.open(path) as image:
        assert (image.format, image.mode) == ("JPEG", "RGB")
        pixels = np.asarray(image)
    expected = np.array(matplotlib.colormaps["RdYlGn"](0.9, bytes=True)[:3], dtype=int)
    assert np.abs(pixels[12, 12].astype(int) - expected).max() <= 6  # JPEG is lossy
    assert pixels[2, 2].max() <= 6


def test_the_copernicus_data_spaces_colormap_object_colours_classes(tmp_path):
    """CDSE's PNG colormap: value -> colour; each value takes the first key at or above it, above the last: transparent."""
    classes = np.array([[0, 1, 2], [3, 0.5, 7], [np.nan, 2, 1]], dtype=np.float32)
    colormap = {"0": [1, 0, 0, 1], "1": [0, 1, 0, 1], "2": 0x0000FFFF, "3": [1, 1, 1]}
    [path] = write_result(cube_of([classes]), "PNG", {"colormap": colormap}, tmp_path)
    pixels = decoded(path)
    assert [tuple(p) for p in pixels[0]] == [(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)]
    assert tuple(pixels[1, 0]) == (255, 255, 255, 255)
    assert tuple(pixels[1, 1]) == (0, 255, 0, 255), "0.5 takes the colour of 1, the first key at or above it"
    assert pixels[1, 2, 3] == 0 and pixels[2, 0, 3] == 0, "above the last key, and no-data: transparent"


def test_several_dates_are_refused_with_what_to_do(tmp_path):
    cube = cube_of([VALUES], dates=["2021-06-13", "2021-07-21"])
    with pytest.raises(FormatUnsuitable) as error:
        write_result(cube, "PNG", {}, tmp_path)
    assert list(tmp_path.iterdir()) == [], "nothing is written"
    assert error.value.status == 400
    message = error.value.message
    assert "2 labels" in message and "2021-06-13, 2021-07-21" in message and "reduce_dimension" in message and "filter_temporal" in message


@pytest.mark.parametrize("bands", [2, 4])
def test_band_counts_a_picture_cannot_show_are_refused(tmp_path, bands):
    with pytest.raises(FormatUnsuitable, match=f"{bands} bands"):
        write_result(cube_of([VALUES] * bands), "PNG", {}, tmp_path)


def test_values_that_are_no_raster_cube_are_refused(tmp_path):
    with pytest.raises(FormatUnsuitable, match="raster data cube"):
        write_result([1, 2, 3], "JPEG", {}, tmp_path)


@pytest.mark.parametrize(("options", "problem"), [
    ({"colormap": "rainbowish"}, "colormap: 'rainbowish' is not a colormap name"),
    ({"colormap": {"low": [1, 0, 0, 1]}}, "colormap: the key 'low' is not a number"),
    ({"colormap": {"0": [2, 0, 0, 1]}}, "colormap: the colour of 0"),
    ({"range": [1, 0]}, "range: the low end 1 is not below the high end 0"),
    ({"range": "0,1"}, "range:"),
    ({"gamma": 0}, "gamma:"),
    ({"quality": 90}, "quality: not an option of PNG"),
    ({"colourmap": "viridis"}, "colourmap: not an option of PNG"),
    ({"filename_prefix": "../up"}, "filename_prefix:"),
])
def test_bad_options_name_what_is_wrong(tmp_path, options, problem):
    with pytest.raises(ProcessParameterInvalid) as error:
        output_format("PNG").check_options(options)
    assert error.value.status == 400 and problem in error.value.message
    assert error.value.message.startswith("The value passed for parameter 'options' in process 'save_result' is invalid")


def test_a_colormap_on_three_bands_is_refused(tmp_path):
    with pytest.raises(ProcessParameterInvalid, match="a colormap colours one band"):
        write_result(cube_of([VALUES] * 3), "PNG", {"colormap": "viridis"}, tmp_path)


def test_file_formats_advertise_the_options():
    output = file_formats()["output"]
    assert output["PNG"]["gis_data_types"] == ["raster"] and output["JPEG"]["gis_data_types"] == ["raster"]
    assert {"colormap", "range", "gamma", "filename_prefix"} <= set(output["PNG"]["parameters"])
    assert "quality" in output["JPEG"]["parameters"] and "quality" not in output["PNG"]["parameters"]
    assert all("description" in p for f in ("PNG", "JPEG") for p in output[f]["parameters"].values())


def test_the_bytes_are_what_a_tile_would_be(tmp_path):
    """save_result's PNG and a map tile share the drawing: the same values and style give the same pixels."""
    from terracube.formats.image import Style, encode, to_rgba

    [path] = write_result(cube_of([VALUES]), "PNG", {"colormap": "RdYlGn", "range": [-1, 1]}, tmp_path)
    tile = encode(to_rgba(VALUES[None], Style(colormap="RdYlGn", ranges=((-1.0, 1.0),))), "png")
    np.testing.assert_array_equal(decoded(path), np.asarray(Image.open(io.BytesIO(tile)).convert("RGBA")))


def test_file_formats_follow_the_openeo_api_schema():
    import copy

    import jsonschema

    from terracube.api.openapi import openeo_api

    spec = copy.deepcopy(openeo_api())
    # The API document's known defect (Open-EO/openeo-api#600, see tests/compliance/corrected_spec_check.py):
    # process_json_schema's oneOf matches every plain schema more than once; it is meant as anyOf.
    single = spec["components"]["schemas"]["process_json_schema"]
    single["anyOf"] = single.pop("oneOf")
    schema = spec["paths"]["/file_formats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(file_formats(), {**schema, "components": spec["components"]})
