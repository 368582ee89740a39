"""A cube sent as netCDF (``load_url``), processed by a live server and saved as netCDF, read back.

What a user keeps and loads again must be the same cube: labels, dimension order and types,
dtype, values and CRS. Requests go to ``/result`` with ``requests``, as any client sends them; the
input files come from a small file server in this process.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import requests
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros

from terracube.conformance.http import FileServer

BANDS = ["B04", "B08"]


@pytest.fixture(scope="module")
def files() -> FileServer:
    server = FileServer()
    yield server
    server.server.shutdown()


VALUES = np.arange(2 * 2 * 3 * 4, dtype="float32").reshape(2, 2, 3, 4)


def cube_netcdf(bands: bool = True) -> bytes:
    """A (t, bands, y, x) float32 cube in EPSG:25832 (or its first band as (t, y, x)), one variable."""
    geobox = GeoBox.from_bbox((404830, 5757470, 404870, 5757500), "EPSG:25832", resolution=10)
    plane = xr_zeros(geobox, dtype="float32")
    cube = (
        xr.concat([xr.concat([plane] * 2, dim="bands")] * 2, dim="t")
        .assign_coords(t=pd.to_datetime(["2020-06-01", "2020-06-03"]), bands=BANDS)
        .copy(data=VALUES)
    )
    types = {"t": "temporal", "bands": "bands", "y": "spatial", "x": "spatial"}
    if not bands:
        cube = cube.isel(bands=0, drop=True)
        del types["bands"]
    cube.encoding.pop("grid_mapping", None)
    cube.attrs = {"grid_mapping": "spatial_ref", "openeo:dimension_types": json.dumps(types)}
    return cube.to_dataset(name="data").to_netcdf(engine="h5netcdf")


def run_to_netcdf(server, files: FileServer, name: str, body: bytes, process: dict) -> bytes:
    """``load_url`` → ``process`` (its ``data`` is the loaded cube) → ``save_result`` as netCDF."""
    url = files.publish(name, body)
    graph = {
        "load": {"process_id": "load_url", "arguments": {"url": url, "format": "netCDF"}},
        "case": {"process_id": process["process_id"], "arguments": {"data": {"from_node": "load"}, **process["arguments"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "case"}, "format": "netCDF"}, "result": True},
    }
    response = requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}}, timeout=120)
    assert response.status_code == 200, response.text
    return response.content


def test_a_dimension_named_var_is_saved_next_to_the_values(server, files):
    """A cube without bands is one variable, named ``var`` unless a dimension has that name."""
    body = run_to_netcdf(server, files, "var.nc", cube_netcdf(bands=False), {"process_id": "add_dimension", "arguments": {"name": "var", "label": 1, "type": "other"}})
    with xr.open_dataset(io.BytesIO(body), engine="h5netcdf") as dataset:
        [name] = set(dataset.data_vars) - {"spatial_ref"}
        values = dataset[name].load()
        assert values.dims == ("var", "t", "y", "x") and values["var"].values.tolist() == [1]
        assert values.dtype == np.float32
        assert values.values[0].tolist() == VALUES[:, 0].tolist()
        assert json.loads(values.attrs["openeo:dimension_types"]) == {"var": "other", "t": "temporal", "y": "spatial", "x": "spatial"}
        assert "25832" in dataset["spatial_ref"].attrs["crs_wkt"]


def test_a_one_band_result_loads_back_as_the_same_cube(server, files):
    """netCDF → server → netCDF → server → JSON: the band, the order of dimensions and the values."""
    body = run_to_netcdf(server, files, "one-band.nc", cube_netcdf(), {"process_id": "filter_bands", "arguments": {"bands": ["B08"]}})
    url = files.publish("one-band-result.nc", body)
    graph = {
        "load": {"process_id": "load_url", "arguments": {"url": url, "format": "netCDF"}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "JSON"}, "result": True},
    }
    response = requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}}, timeout=120)
    assert response.status_code == 200, response.text
    cube = response.json()
    assert cube["dims"] == ["t", "bands", "y", "x"]
    assert cube["coords"]["bands"] == ["B08"]
    assert cube["coords"]["t"] == ["2020-06-01T00:00:00Z", "2020-06-03T00:00:00Z"]
    assert cube["coords"]["x"] == [404835.0, 404845.0, 404855.0, 404865.0]
    assert cube["data"] == VALUES[:, 1:2].tolist()
