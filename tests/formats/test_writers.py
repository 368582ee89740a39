"""Writers read back with the libraries users open results with."""

import json

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros

from terracube.formats import INPUT_FORMATS, file_formats, gtiff, input_format, output_format, write_result
from terracube.errors import FormatUnsupported

import pytest


def small_cube(with_t=True):
    geobox = GeoBox.from_bbox((362150, 5598160, 362250, 5598220), "EPSG:32632", resolution=10)
    plane = xr_zeros(geobox, dtype="float32")
    layers = []
    for t in range(2 if with_t else 1):
        bands = [plane + (t * 10 + b) for b in range(2)]
        layers.append(xr.concat(bands, dim="bands").assign_coords(bands=["B04", "B08"]))
    cube = xr.concat(layers, dim="t").assign_coords(t=pd.to_datetime(["2021-06-13", "2021-07-21"][: len(layers)]))
    cube[0, 0, 0, 0] = np.nan
    return cube if with_t else cube.isel(t=0, drop=True)


@pytest.fixture(params=["in memory", "block by block"])
def gtiff_path(request, monkeypatch):
    """Both ways the GeoTIFF writer goes: small results whole from memory, large ones block by block
    through a scratch file (here every result is small, so the large way is made the only one)."""
    if request.param == "block by block":
        monkeypatch.setattr(gtiff, "IN_MEMORY_BYTES", 0)
    return request.param


def test_gtiff_is_a_cog_with_grid_nodata_and_band_names(tmp_path, gtiff_path):
    [path] = write_result(small_cube(), "GTiff", {}, tmp_path)
    assert path.name == "openEO.tif"
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32632
        assert src.count == 4 and (src.height, src.width) == (6, 10)
        assert tuple(src.bounds) == (362150, 5598160, 362250, 5598220)
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.descriptions == ("2021-06-13_B04", "2021-06-13_B08", "2021-07-21_B04", "2021-07-21_B08")
        data = src.read()
        assert np.isnan(data[0, 0, 0]) and data[3, 1, 1] == 11
        assert src.profile["tiled"]
        # deflate with the floating-point predictor: what GDAL, QGIS and rasterio read
        assert {"LAYOUT": "COG", "COMPRESSION": "DEFLATE", "PREDICTOR": "3"}.items() <= src.tags(ns="IMAGE_STRUCTURE").items()
    assert [p.name for p in tmp_path.iterdir()] == ["openEO.tif"], "no scratch file is left behind"


def chunked_cube():
    """Several dask blocks in every direction, with values that say where they belong."""
    cube = small_cube()
    values = np.arange(cube.size, dtype="float32").reshape(cube.shape)
    values[1, 0, 4, 7] = np.nan
    return cube.copy(data=values).chunk({"t": 1, "bands": 1, "y": 4, "x": 3}), values


def test_gtiff_of_a_chunked_cube_puts_every_block_in_its_window(tmp_path, gtiff_path):
    cube, values = chunked_cube()
    [path] = write_result(cube, "GTiff", {}, tmp_path)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), values.reshape(4, 6, 10))


def test_gtiff_from_a_batch_jobs_dask_cluster_is_the_same_file(tmp_path, gtiff_path):
    from distributed import Client, LocalCluster

    cube, values = chunked_cube()
    # Workers in other processes: blocks cannot write into this process's file themselves.
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(cluster):
        [path] = write_result(cube, "GTiff", {}, tmp_path)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), values.reshape(4, 6, 10))


def test_netcdf_has_bands_as_variables_and_a_crs(tmp_path):
    [path] = write_result(small_cube(), "netcdf", {}, tmp_path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert set(ds.data_vars) == {"B04", "B08"}
        assert ds["B08"].dims == ("t", "y", "x")
        assert "32632" in ds["spatial_ref"].attrs["crs_wkt"] or "UTM zone 32N" in ds["spatial_ref"].attrs["crs_wkt"]


def test_json_turns_nan_into_null(tmp_path):
    [path] = write_result([1.5, float("nan"), None], "JSON", {}, tmp_path)
    assert json.loads(path.read_text()) == [1.5, None, None]


def test_unknown_format_names_the_supported_ones():
    with pytest.raises(FormatUnsupported, match="GTiff"):
        output_format("XYZ")
    assert output_format("gtiff").name == "GTiff" and output_format("GeoTIFF").name == "GTiff"
    formats = file_formats()
    assert {"GTiff", "netCDF", "JSON"} <= set(formats["output"]) and "GTiff" in formats["input"]


def test_netcdf_reads_back_as_the_same_cube(tmp_path):
    """load_url reads terracube's netCDF as written: dimension order and types, one band kept, CRS."""
    from terracube.formats.netcdf import read_netcdf

    cube = small_cube().transpose("t", "bands", "y", "x").isel(bands=[1])
    cube.attrs["dimension_types"] = {"t": "temporal", "bands": "bands", "y": "spatial", "x": "spatial"}
    [path] = write_result(cube, "netcdf", {}, tmp_path)
    back = read_netcdf(path).compute()
    assert back.dims == ("t", "bands", "y", "x") and back["bands"].values.tolist() == ["B08"]
    assert back.attrs["dimension_types"] == cube.attrs["dimension_types"]
    assert back.odc.crs.epsg == 32632 and back.dtype == np.float32
    np.testing.assert_array_equal(back.values, cube.values)


def test_netcdf_of_a_cube_with_a_dimension_named_var(tmp_path):
    """Without bands the values are one variable; its name must not clash with a dimension."""
    from terracube.formats.netcdf import read_netcdf

    cube = small_cube().isel(bands=0, drop=True).expand_dims(var=[1])
    [path] = write_result(cube, "netcdf", {}, tmp_path)
    back = read_netcdf(path).compute()
    assert back.dims == ("var", "t", "y", "x") and back["var"].values.tolist() == [1]
    np.testing.assert_array_equal(back.values, cube.values)


def test_every_advertised_input_format_reads_what_the_writers_write(tmp_path):
    """/file_formats' input is the readers' table: each one reads a file of its format back."""
    formats = file_formats()
    assert set(formats["input"]) == {f.name for f in INPUT_FORMATS} == {"GTiff", "netCDF", "GeoJSON"}
    assert formats["input"]["GeoJSON"]["gis_data_types"] == ["vector"] and formats["input"]["GTiff"]["gis_data_types"] == ["raster"]
    cube = small_cube(with_t=False)
    [tif] = write_result(cube, "GTiff", {}, tmp_path / "tif")
    back = input_format("geotiff").reader([tif]).compute()
    assert back.dims == ("bands", "y", "x") and back["bands"].values.tolist() == ["B04", "B08"] and back.odc.crs.epsg == 32632
    np.testing.assert_array_equal(back.values, cube.values)
    [nc] = write_result(cube, "netCDF", {}, tmp_path / "nc")
    np.testing.assert_array_equal(input_format("NC").reader([nc]).compute().values, cube.values)
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.0, 50.5]}, "properties": {"name": "a"}}
    (tmp_path / "a.geojson").write_text(json.dumps(point))
    (tmp_path / "b.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [point, point]}))
    assert input_format("GeoJSON").reader([tmp_path / "a.geojson"]) == point
    both = input_format("json").reader([tmp_path / "a.geojson", tmp_path / "b.geojson"])
    assert both["type"] == "FeatureCollection" and len(both["features"]) == 3
    with pytest.raises(FormatUnsupported, match="GTiff, netCDF, GeoJSON"):
        input_format("CSV")


def test_several_rasters_are_mosaicked_first_file_first(tmp_path):
    cube = small_cube(with_t=False)
    [first] = write_result(cube.where(cube.x < 362200), "GTiff", {}, tmp_path / "first")
    [second] = write_result(cube + 100, "GTiff", {}, tmp_path / "second")
    both = input_format("GTiff").reader([first, second]).compute()
    left, right = both.sel(x=slice(None, 362200)), both.sel(x=slice(362200, None))
    np.testing.assert_array_equal(left.values[:, 1:, :], cube.sel(x=slice(None, 362200)).values[:, 1:, :])
    np.testing.assert_array_equal(right.values, (cube + 100).sel(x=slice(362200, None)).values)
