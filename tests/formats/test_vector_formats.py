"""aggregate_spatial's vector cube saved as GeoJSON, CSV, GeoParquet and netCDF, read back as a user would."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import openeo
import pandas as pd
import pytest
import xarray as xr
import xvec  # noqa: F401 - the .xvec accessor

from terracube.execute import execute, request_env

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.live_server import LiveServer

FIELDS = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "riverside"},
         "geometry": {"type": "Polygon", "coordinates": [[[7.07, 50.53], [7.08, 50.53], [7.08, 50.535], [7.07, 50.535], [7.07, 50.53]]]}},
        {"type": "Feature", "properties": {"name": "hillside"},
         "geometry": {"type": "Polygon", "coordinates": [[[7.10, 50.54], [7.11, 50.54], [7.11, 50.545], [7.10, 50.545], [7.10, 50.54]]]}},
    ],
}


def field_means(format_name: str) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI,
                                                                  "temporal_extent": AFTER, "bands": ["B04", "B08"]}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": FIELDS,
            "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "agg"}, "format": format_name}, "result": True},
    }}


@pytest.fixture(scope="module")
def reference(catalog, settings, tmp_path_factory) -> xr.Dataset:
    """The same means as netCDF, decoded with xvec: the figures the other formats must carry."""
    [(path, _)] = execute(field_means("netCDF"), request_env(settings, catalog, user_id=None), tmp_path_factory.mktemp("nc")).files
    dataset = xr.open_dataset(path).xvec.decode_cf().load()
    assert dataset.sizes["geometry"] == 2 and dataset.xvec.geom_coords_indexed["geometry"].crs is not None
    return dataset


def expected_columns(reference: xr.Dataset) -> dict[str, np.ndarray]:
    day = str(reference.t.values[0])[:10]
    return {f"{day}_{band}": reference[band].isel(t=0).values for band in ("B04", "B08")}


@pytest.mark.parametrize("format_name, suffix", [("GeoJSON", ".geojson"), ("Parquet", ".parquet")])
def test_geojson_and_geoparquet_hold_a_feature_per_geometry(format_name, suffix, reference, catalog, settings, tmp_path):
    [(path, _)] = execute(field_means(format_name), request_env(settings, catalog, user_id=None), tmp_path).files
    assert path.suffix == suffix
    frame = gpd.read_parquet(path) if suffix == ".parquet" else gpd.read_file(path)
    assert list(frame["name"]) == ["riverside", "hillside"]  # the features' own properties come along
    for column, values in expected_columns(reference).items():
        np.testing.assert_allclose(frame[column].to_numpy(dtype=float), values, rtol=1e-6)
    if suffix == ".geojson":
        assert frame.crs.to_epsg() == 4326  # RFC 7946
        west, south, east, north = frame.total_bounds
        assert 7.06 < west < east < 7.12 and 50.52 < south < north < 50.55
    else:
        assert frame.crs.to_epsg() == 4326  # aggregate_spatial keeps the geometries in their own CRS


def test_csv_has_wkt_geometries_and_a_column_per_band_and_date(reference, catalog, settings, tmp_path):
    [(path, _)] = execute(field_means("CSV"), request_env(settings, catalog, user_id=None), tmp_path).files
    table = pd.read_csv(path)
    assert table["geometry"].str.startswith("POLYGON").all()
    for column, values in expected_columns(reference).items():
        np.testing.assert_allclose(table[column].to_numpy(), values, rtol=1e-6)


def test_a_vector_format_for_a_raster_cube_is_a_clear_error(catalog, settings, tmp_path):
    graph = field_means("GeoJSON")
    graph["process_graph"]["save"]["arguments"]["data"] = {"from_node": "load"}
    with pytest.raises(Exception, match="vector data cubes"):
        execute(graph, request_env(settings, catalog, user_id=None), tmp_path)


def test_the_client_downloads_field_means_as_geojson(data_dir, tmp_path, reference):
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir)}).start()
    try:
        con = openeo.connect(server.url)
        assert {"GeoJSON", "CSV", "Parquet"} <= set(con.list_output_formats())
        cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
        cube.aggregate_spatial(geometries=FIELDS, reducer="mean").download(tmp_path / "fields.geojson", format="GeoJSON")
    finally:
        server.stop()
    frame = gpd.read_file(tmp_path / "fields.geojson")
    for column, values in expected_columns(reference).items():
        np.testing.assert_allclose(frame[column].to_numpy(dtype=float), values, rtol=1e-6)


def test_json_holds_the_means_and_the_geometries_as_geojson(reference, catalog, settings, tmp_path):
    # A graph without save_result (the openeo client's ``execute()``) answers the same JSON.
    [(path, _)] = execute(field_means("JSON"), request_env(settings, catalog, user_id=None), tmp_path).files
    answer = json.loads(path.read_text())
    assert answer["dims"] == ["geometry", "t", "bands"] and answer["coords"]["bands"] == ["B04", "B08"]
    assert answer["coords"]["geometry"] == [feature["geometry"] for feature in FIELDS["features"]]
    for band, values in zip(("B04", "B08"), np.array(answer["data"], dtype=float)[:, 0, :].T):
        np.testing.assert_allclose(values, reference[band].isel(t=0).values, rtol=1e-6)
