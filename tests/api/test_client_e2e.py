"""The tutorial and the discovery calls through the official openEO client, against a live server."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import requests
from rasterio.transform import rowcol

from terracube.data.sample import river_centerline

from tests.api.server import start_server, stop_server
from tests.conftest import AFTER, BEFORE, TUTORIAL_AOI, read_tutorial_ndvi

ORIGIN = "https://editor.openeo.org"


def test_capabilities_as_the_client_reads_them(con, server):
    capabilities = con.capabilities()
    assert capabilities.api_version() == "1.2.0"
    assert capabilities.supports_endpoint("/result", method="POST")
    assert capabilities.supports_endpoint("/collections/{collection_id}", method="GET")
    assert capabilities.supports_endpoint("/validation", method="POST")
    assert capabilities.supports_endpoint("/credentials/basic", method="GET")
    document = requests.get(server.url + "/").json()
    assert {"conformance", "version-history", "data"} <= {link["rel"] for link in document["links"]}
    well_known = requests.get(server.url + "/.well-known/openeo").json()
    assert well_known["versions"][0]["api_version"] == "1.2.0"
    assert "https://api.openeo.org/1.2.0" in requests.get(server.url + "/conformance").json()["conformsTo"]
    assert requests.get(server.url + "/health").json() == {"status": "ok"}
    assert con.describe_account()["user_id"] == "anonymous"


def test_collections_processes_and_formats(con, server):
    assert "SENTINEL2_L2A" in con.list_collection_ids()
    collection = con.describe_collection("SENTINEL2_L2A")
    assert "simulated" in collection["description"].lower()
    dimensions = collection["cube:dimensions"]
    assert dimensions["bands"]["values"][:4] == ["B01", "B02", "B03", "B04"]
    assert dimensions["x"]["reference_system"] == 32632 and dimensions["t"]["type"] == "temporal"
    names = [band["name"] for band in collection["summaries"]["eo:bands"]]
    assert {"B04", "B08", "SCL", "B8A"} <= set(names) and "B10" not in names
    assert {"self", "root", "parent"} <= {link["rel"] for link in collection["links"]}
    queryables = requests.get(server.url + "/collections/SENTINEL2_L2A/queryables").json()
    assert "eo:cloud_cover" in queryables["properties"]

    processes = {process["id"]: process for process in con.list_processes()}
    assert {"load_collection", "ndvi", "reduce_dimension", "save_result", "mean", "filter_bbox", "merge_cubes"} <= set(processes)
    assert processes["ndvi"]["parameters"][0]["name"] == "data"  # the official spec, served as it is
    formats = con.list_file_formats()
    assert {"GTiff", "netCDF", "JSON"} <= set(formats["output"]) and "GTiff" in formats["input"]


def test_the_client_sees_the_bands(con):
    assert {"B04", "B08"} <= set(con.collection_metadata("SENTINEL2_L2A").band_names)
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    assert cube.metadata.band_names == ["B04", "B08"]
    # The client checks a format against /file_formats before sending anything.
    with pytest.raises(ValueError, match="XYZ"):
        cube.download(format="XYZ")


def test_basic_login_then_a_computation_with_the_bearer_token(server):
    import openeo

    con = openeo.connect(server.url).authenticate_basic("alice", "any password")
    assert con.describe_account()["user_id"] == "anonymous"
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    ndvi = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean")
    value = ndvi.reduce_dimension(dimension="x", reducer="mean").reduce_dimension(dimension="y", reducer="mean").execute()
    assert 0.65 < value < 0.76


def test_browser_clients_get_cors_headers(server):
    preflight = requests.options(
        server.url + "/result",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    response = requests.get(server.url + "/collections", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "OpenEO-Costs" in response.headers["Access-Control-Expose-Headers"]


def _ndvi_near_river(path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        ndvi = src.read(1)
        line = river_centerline()
        inside = (line[:, 0] > src.bounds.left) & (line[:, 0] < src.bounds.right)
        rows, cols = rowcol(src.transform, line[inside, 0], line[inside, 1])
    near = np.zeros_like(ndvi, dtype=bool)
    for row, col in zip(rows, cols):
        near[max(row - 8, 0) : row + 9, max(col - 8, 0) : col + 9] = True  # within ~80 m
    return ndvi, near


def test_the_tutorial_downloads_before_and_after(con, tmp_path):
    """The tutorial's cell, verbatim but for the output folder."""
    files = {}
    for period in (BEFORE, AFTER):
        cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=period, bands=["B04", "B08"])
        target = tmp_path / f"ndvi_{period[0]}.tif"
        cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").download(target)
        files[period[0]] = target
    for path in files.values():
        read_tutorial_ndvi(path)
    before, near = _ndvi_near_river(files[BEFORE[0]])
    after, _ = _ndvi_near_river(files[AFTER[0]])
    assert 0.65 < np.nanmean(after) < 0.76  # CDSE: 0.718 over the real valley
    assert near.sum() > 1000
    assert np.nanmean(after[near]) < np.nanmean(before[near]) - 0.2


def test_result_headers(server):
    graph = {
        "load": {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, "bands": ["B04"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}, "result": True},
    }
    response = requests.post(server.url + "/result", json={"process": {"process_graph": graph}}, headers={"Origin": ORIGIN}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("image/tiff")
    assert response.headers["Content-Disposition"].startswith("attachment; filename=") and ".tif" in response.headers["Content-Disposition"]
    assert response.headers["OpenEO-Costs"] == "0" and response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.content[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00")


def test_netcdf_and_json_results(con, tmp_path):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    cube.download(tmp_path / "bands.nc", format="netCDF")
    import xarray as xr

    with xr.open_dataset(tmp_path / "bands.nc") as dataset:
        assert set(dataset.data_vars) >= {"B04", "B08"} and dataset.sizes["x"] == 449
    mean = cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").reduce_dimension(dimension="x", reducer="mean").reduce_dimension(dimension="y", reducer="mean")
    value = mean.execute()
    assert isinstance(value, float) and 0.65 < value < 0.76


@pytest.mark.slow
def test_a_fresh_data_directory_builds_the_archive_on_first_use(tmp_path):
    """Starting is instant and builds nothing; the first tutorial call builds the archive and succeeds.

    Of the tutorial's two days only (``sample_days``): the whole summer's build is the session's own
    (tests/conftest.py), and its 37 scenes would prove nothing more here.
    """
    import openeo
    import pystac

    data_dir = tmp_path / "fresh"
    url, process = start_server({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_SAMPLE_DAYS": "2021-06-13,2021-07-21"})
    try:
        con = openeo.connect(url, default_timeout=600)
        assert "load_collection" in {p["id"] for p in con.list_processes()}
        assert con.list_file_formats()["output"]
        assert not (data_dir / "sample").exists()
        cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=BEFORE, bands=["B04", "B08"])
        cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").download(tmp_path / "ndvi.tif")
        read_tutorial_ndvi(tmp_path / "ndvi.tif")
        built = pystac.Catalog.from_file(str(data_dir / "sample" / "catalog.json"))
        assert sorted(item.datetime.date().isoformat() for item in built.get_items(recursive=True)) == ["2021-06-13", "2021-07-21"]
    finally:
        stop_server(process)
