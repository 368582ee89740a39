"""Tiles of the Ahr valley drawn from process graphs over the sample archive, checked against the source pixels."""
# ruff: noqa: F811  (the fixtures come from tiles_fixtures: tests/services/conftest.py is the services API's)

from __future__ import annotations

import json

import jsonschema
import matplotlib
import numpy as np
import pytest
import yaml

from terracube.errors import OpenEOError
from terracube.services import grid, tiles
from terracube.services.tiles import check_service, describe_layer, render_tile, service_types_document
from tests.services.tiles_fixtures import (  # noqa: F401  (fixtures)
    bands_graph,
    draws,
    env,
    ndvi_graph,
    picture,
    scene_file,
    service,
    source_values,
    tile_pixel_centres,
    tile_settings,
)

OPENAPI = "/work/shared/openeo-api/openapi.yaml"
# Zoom 13 tiles: one on the archive's western edge (data in its east, none in its west), one inside it.
EDGE = (13, 4255, 2759)
INSIDE = (13, 4257, 2759)


def test_the_edge_tile_lies_across_the_archive_edge(data_dir):
    xs, ys = tile_pixel_centres(*EDGE)
    _, _, inside = source_values(scene_file(data_dir, "2021-07-21", "B04"), *np.meshgrid(xs, ys))
    assert 0.2 < inside.mean() < 0.8


def test_ndvi_tile_colours_are_the_colormap_of_the_source_ndvi(env, data_dir):
    drawn = render_tile(env, service(ndvi_graph(), {"colormap": "RdYlGn", "range": [-1, 1]}), *EDGE)
    assert drawn.media_type == "image/png"
    rgba = picture(drawn.content)
    assert rgba.shape == (256, 256, 4)
    xs, ys = np.meshgrid(*tile_pixel_centres(*EDGE))
    red, safe, inside = source_values(scene_file(data_dir, "2021-07-21", "B04"), xs, ys)
    nir, _, _ = source_values(scene_file(data_dir, "2021-07-21", "B08"), xs, ys)
    ndvi = (nir - red) / (nir + red)
    valid = safe & np.isfinite(ndvi)
    # Alpha: transparent where the archive has no pixel, opaque over valid NDVI.
    assert (rgba[..., 3][~inside] == 0).all()
    assert (rgba[..., 3][valid] == 255).all()
    expected = matplotlib.colormaps["RdYlGn"]((ndvi[valid] + 1) / 2, bytes=True)
    difference = np.abs(rgba[valid].astype(int) - expected.astype(int)).max(axis=-1)
    # Equal, or the neighbouring colour of the 256 where a value sits on a bin's edge in float32.
    assert valid.sum() > 10_000 and (difference <= 4).all() and (difference == 0).mean() > 0.99
    assert len(np.unique(rgba[valid][:, :3], axis=0)) > 20  # a picture of the valley, not one colour


def test_rgb_tile_stretches_each_band_over_its_range_with_gamma(env, data_dir):
    ranges, gamma = [[0, 1500], [0, 2000], [0, 2500]], 1.5
    configuration = {"range": ranges, "gamma": gamma}
    rgba = picture(render_tile(env, service(bands_graph(["B04", "B03", "B02"]), configuration), *INSIDE).content)
    xs, ys = np.meshgrid(*tile_pixel_centres(*INSIDE))
    for channel, (band, (low, high)) in enumerate(zip(["B04", "B03", "B02"], ranges)):
        values, safe, _ = source_values(scene_file(data_dir, "2021-07-21", band), xs, ys)
        expected = np.rint(np.clip((values - low) / (high - low), 0, 1) ** (1 / gamma) * 255)
        assert safe.sum() > 30_000
        assert np.abs(rgba[..., channel][safe].astype(int) - expected[safe]).max() <= 1
    assert (rgba[..., 3] == 255).all()


def test_query_options_restyle_and_jpeg_has_no_alpha(env):
    layer = service(ndvi_graph(), {"colormap": "RdYlGn"})
    png = picture(render_tile(env, layer, *INSIDE).content)
    jpeg_tile = render_tile(env, layer, *INSIDE, options={"format": "jpeg"})
    assert jpeg_tile.media_type == "image/jpeg" and jpeg_tile.content[:2] == b"\xff\xd8"
    jpeg = picture(jpeg_tile.content)
    assert jpeg.shape == (256, 256, 3)
    assert np.abs(jpeg.astype(int) - png[..., :3].astype(int)).mean() < 4  # the same picture, compressed
    grey = picture(render_tile(env, layer, *INSIDE, options={"colormap": "greys", "min": "0", "max": "0.9"}).content)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert not (grey[..., :3] == png[..., :3]).all()


@pytest.mark.parametrize(("options", "parameter"), [
    ({"colormap": "rainbowish"}, "colormap"), ({"range": "1,0"}, "range"), ({"gamma": "-1"}, "gamma"),
    ({"format": "gif"}, "format"), ({"min": "a"}, "min"), ({"range": "0,1,0,1,0,1"}, "range"),
])
def test_a_bad_option_is_a_400_naming_it(env, options, parameter):
    with pytest.raises(OpenEOError) as raised:
        render_tile(env, service(ndvi_graph()), *INSIDE, options=options)
    assert (raised.value.code, raised.value.status) == ("ServiceConfigInvalid", 400)
    assert f"'{parameter}'" in raised.value.message


def test_an_unknown_option_is_unsupported(env):
    with pytest.raises(OpenEOError) as raised:
        render_tile(env, service(ndvi_graph()), *INSIDE, options={"colourmap": "viridis"})
    assert (raised.value.code, raised.value.status) == ("ServiceConfigUnsupported", 400) and "colourmap" in raised.value.message


def test_a_tile_outside_the_data_is_transparent_and_nothing_is_evaluated(env, monkeypatch):
    evaluations = []
    monkeypatch.setattr(tiles, "lazy_planned", lambda *args: evaluations.append(args))
    sahara = grid.tile_matrix_set().tile(5.0, 25.0, 13)
    rgba = picture(render_tile(env, service(ndvi_graph()), 13, sahara.x, sahara.y).content)
    assert rgba.shape == (256, 256, 4) and (rgba[..., 3] == 0).all()
    assert evaluations == []


def test_zoom_levels_over_the_budget_are_refused_and_the_layer_says_so(env, tile_settings):
    layer = service(ndvi_graph())
    description = describe_layer(env, layer)
    # 10 m pixels at 50.5 degrees north: a zoom 9 tile covers about 5000 x 5000 of them, zoom 10 2500 x 2500.
    assert description.min_zoom == 10 and description.max_zoom == 18
    west, south, east, north = description.bbox_wgs84
    assert 6.9 < west < 7.0 and 7.1 < east < 7.2 and 50.4 < south < 50.5 and 50.5 < north < 50.6
    assert description.times == ["2021-07-21"]
    centre = grid.tile_matrix_set().tile(7.08, 50.53, 9)
    with pytest.raises(OpenEOError) as raised:
        render_tile(env, layer, 9, centre.x, centre.y)
    assert raised.value.status == 400 and "tile_max_source_pixels" in raised.value.message and "level 10" in raised.value.message
    centre = grid.tile_matrix_set().tile(7.08, 50.53, 10)
    assert picture(render_tile(env, layer, 10, centre.x, centre.y).content)[..., 3].any()
    # A smaller budget raises the lowest zoom level: a quarter of the pixels, one level up.
    smaller = env.__class__(**{**env.__dict__, "settings": tile_settings.model_copy(update={"tile_max_source_pixels": 2048 * 2048})})
    assert describe_layer(smaller, service(ndvi_graph())).min_zoom == 11


def test_several_dates_draw_the_latest_unless_a_time_is_asked_for(env):
    layer = service(ndvi_graph(["2021-07-18", "2021-07-24"]), {"colormap": "RdYlGn"}, type="WMTS")
    assert describe_layer(env, layer).times == ["2021-07-18", "2021-07-21", "2021-07-23"]
    latest = render_tile(env, layer, *INSIDE)
    assert latest.content == render_tile(env, layer, *INSIDE, time="2021-07-23").content
    assert latest.content == render_tile(env, service(ndvi_graph(["2021-07-23", "2021-07-24"]), {"colormap": "RdYlGn"}), *INSIDE).content
    earlier = render_tile(env, layer, *INSIDE, time="2021-07-18T00:00:00Z")
    assert earlier.content != latest.content
    assert (picture(render_tile(env, layer, *INSIDE, time="2021-07-19").content)[..., 3] == 0).all()  # no such date: empty


def test_the_tile_is_a_process_parameter(env):
    with_parameter = ndvi_graph(spatial_extent={"from_parameter": "spatial_extent"})
    assert render_tile(env, service(with_parameter), *EDGE).content == render_tile(env, service(ndvi_graph()), *EDGE).content
    # A load smaller than the tile fills only its part of it.
    (west, south, east, north) = grid.tile_bounds(*INSIDE)[1]
    half = ndvi_graph(spatial_extent={"west": west, "south": south, "east": (west + east) / 2, "north": north})
    rgba = picture(render_tile(env, service(half), *INSIDE).content)
    assert (rgba[:, :120, 3] == 255).all() and (rgba[:, 136:, 3] == 0).all()


def test_check_service_refuses_what_cannot_be_drawn(env):
    def refused(process, configuration=None):
        with pytest.raises(OpenEOError) as raised:
            check_service(env, service(process, configuration))
        return raised.value

    number = {"process_graph": {"load": bands_graph(["B04"])["process_graph"]["load"] | {"result": False},
                                "three": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    error = refused(number)
    assert (error.code, error.status) == ("ProcessGraphInvalid", 400) and "not a raster data cube" in error.message
    error = refused({"process_graph": {"three": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}})
    assert error.code == "ProcessGraphInvalid" and "loads no data" in error.message
    error = refused(bands_graph(["B04", "B08"]))
    assert (error.code, error.status) == ("ServiceConfigInvalid", 400) and "'bands'" in error.message and "not 2" in error.message
    error = refused(ndvi_graph(), {"range": [[0, 1], [0, 1], [0, 1]]})
    assert error.code == "ServiceConfigInvalid" and "'range'" in error.message
    error = refused(ndvi_graph(), {"colormap": "nope"})
    assert error.code == "ServiceConfigInvalid" and "'colormap'" in error.message
    error = refused(ndvi_graph(), {"tile_sise": 256})
    assert error.code == "ServiceConfigUnsupported" and "tile_sise" in error.message
    error = refused(ndvi_graph(), {"min_zoom": 12, "max_zoom": 11})
    assert error.code == "ServiceConfigInvalid" and "'min_zoom'" in error.message
    error = refused({"process_graph": {"load": {**bands_graph(["B99"])["process_graph"]["load"], "result": True}}})
    assert error.code == "BandFilterNotFound"
    check_service(env, service(ndvi_graph(), {"colormap": "RdYlGn", "range": [-0.2, 0.9], "format": "jpeg", "tile_size": 512}))
    check_service(env, service(bands_graph(["B04", "B03", "B02"]), {"range": [[0, 2000], [0, 2000], [0, 2500]], "gamma": [1, 1.1, 1.2]}))


def test_tile_size_512(env):
    rgba = picture(render_tile(env, service(ndvi_graph(), {"tile_size": 512}), *INSIDE).content)
    assert rgba.shape == (512, 512, 4) and (rgba[..., 3] == 255).all()


def test_service_types_follow_the_openeo_api_schema():
    document = service_types_document()
    spec = yaml.safe_load(open(OPENAPI).read())
    # The API document's known defect (Open-EO/openeo-api#600, see tests/compliance/corrected_spec_check.py):
    # process_json_schema's oneOf matches every plain schema thrice; it is meant as anyOf.
    single = spec["components"]["schemas"]["process_json_schema"]
    single["anyOf"] = single.pop("oneOf")
    schema = spec["paths"]["/service_types"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(document, {**json.loads(json.dumps(schema)), "components": spec["components"]})
    assert set(document) == {"XYZ", "WMTS"}
    for kind in document.values():
        assert {"tile_size", "min_zoom", "max_zoom", "format", "colormap", "range", "gamma"} <= set(kind["configuration"])
        names = [parameter["name"] for parameter in kind["process_parameters"]]
        assert {"spatial_extent", "spatial_extent_3857", "tile_zoom", "tile_x", "tile_y"} <= set(names)
    assert "time" in [p["name"] for p in document["WMTS"]["process_parameters"]]
