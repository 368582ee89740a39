"""load_uploaded_files on its own: formats, the workspace as root, the spec's errors."""

import json

import numpy as np
import pytest
import xarray as xr

from terracube.errors import OpenEOError
from terracube.processes.env import ProcessEnv
from terracube.processes.load_uploaded_files import load_uploaded_files


@pytest.fixture
def env(tmp_path):
    return ProcessEnv(files_dir=tmp_path)


def test_geojson_becomes_a_vector_cube(env, tmp_path):
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.0, 50.5]}, "properties": {"name": "a"}}
    (tmp_path / "one.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [point]}))
    (tmp_path / "two.geojson").write_text(json.dumps(point))
    single = load_uploaded_files(["./one.geojson"], "GeoJSON", env=env)
    both = load_uploaded_files(["/one.geojson", "two.geojson"], "geojson", env=env)
    assert single.sizes == {"geometry": 1}
    assert both.sizes == {"geometry": 2} and [p["name"] for p in both.attrs["properties"]] == ["a", "a"]


def test_netcdf_becomes_a_raster_cube(env, tmp_path):
    data = xr.DataArray(np.ones((2, 3), "float32"), dims=("y", "x"), coords={"y": [1.5, 0.5], "x": [0.5, 1.5, 2.5]}, name="v")
    data.to_netcdf(tmp_path / "a.nc", engine="h5netcdf")
    cube = load_uploaded_files(["a.nc"], "netCDF", env=env)
    assert set(cube.dims) == {"y", "x"} and float(cube.sum()) == 6.0


@pytest.mark.parametrize("path", ["missing.tif", "../outside.tif", "a/../../outside.tif"])
def test_missing_or_outside_is_file_not_found(env, tmp_path, path):
    (tmp_path.parent / "outside.tif").write_bytes(b"not yours")
    with pytest.raises(OpenEOError) as error:
        load_uploaded_files([path], "GTiff", env=env)
    assert (error.value.code, error.value.status) == ("FileNotFound", 404)  # errors.json's status


def test_unknown_format(env):
    with pytest.raises(OpenEOError) as error:
        load_uploaded_files(["a.xyz"], "XYZ", env=env)
    assert error.value.code == "FormatUnsupported"


def test_no_workspace_without_a_user():
    with pytest.raises(OpenEOError) as error:
        load_uploaded_files(["a.tif"], "GTiff", env=ProcessEnv())
    assert (error.value.code, error.value.status) == ("FileNotFound", 404)


def test_json_that_is_not_geojson_is_format_unsuitable(env, tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(OpenEOError) as error:
        load_uploaded_files(["list.json"], "GeoJSON", env=env)
    assert (error.value.code, error.value.status) == ("FormatUnsuitable", 400)
