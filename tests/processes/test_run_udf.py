"""run_udf in process: Python UDFs in the openEO convention over the sample archive, and their errors.

Every UDF here really runs in a child process (there is no other way to run one), so each test
costs about a second of interpreter start-up.
"""

from __future__ import annotations

import textwrap
import time

import numpy as np
import pytest
import xarray as xr

from terracube.errors import OpenEOError
from terracube.graph.model import parse_process_graph
from terracube.graph.evaluate import evaluate_process_graph
from terracube.execute import execute, request_env
from terracube.processes.env import ProcessEnv
from terracube.processes.udf import run_udf

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.processes.helpers import make_cube

DOUBLE_PLUS = textwrap.dedent(
    """
    import xarray

    def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
        return cube * 2 + context["offset"]
    """
)
CENTRED = textwrap.dedent(
    """
    import pandas as pd

    def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:
        return series - series.mean()
    """
)
# The older convention: an XarrayDataCube in and out, no annotations.
MAX_OVER_T = textwrap.dedent(
    """
    from openeo.udf import XarrayDataCube

    def apply_datacube(cube, context):
        return XarrayDataCube(cube.get_array().max("t"))
    """
)


def udf_node(data: dict, code: str, **extra) -> dict:
    return {"process_id": "run_udf", "arguments": {"data": data, "udf": code, "runtime": "Python", **extra}, "result": True}


# A sixteenth of the tutorial's area, for a UDF called once per pixel: as many pixels prove nothing more.
CORNER_AOI = {"west": 7.0555, "south": 50.5202, "east": 7.0710, "north": 50.5268}


def graph(then: dict, spatial_extent: dict = TUTORIAL_AOI) -> dict:
    load = {
        "process_id": "load_collection",
        "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": spatial_extent, "temporal_extent": AFTER, "bands": ["B04", "B08"]},
    }
    return {"process_graph": {"load": load, **then}}


def evaluate(document: dict, catalog, settings):
    return evaluate_process_graph(parse_process_graph(document), env=ProcessEnv(catalog=catalog, settings=settings))


@pytest.fixture(scope="module")
def loaded(catalog, settings) -> xr.DataArray:
    document = graph({})
    document["process_graph"]["load"]["result"] = True
    return evaluate(document, catalog, settings).compute()


def test_apply_datacube_inside_apply_gets_the_cube_and_the_context(catalog, settings, loaded):
    apply = {
        "process_id": "apply",
        "arguments": {
            "data": {"from_node": "load"},
            "process": {"process_graph": {"udf": udf_node({"from_parameter": "x"}, DOUBLE_PLUS, context={"offset": 3})}},
        },
        "result": True,
    }
    result = evaluate(graph({"apply": apply}), catalog, settings).compute()
    assert result.dims == loaded.dims and result.odc.crs == loaded.odc.crs
    np.testing.assert_allclose(result.values, loaded.values * 2 + 3)


def test_apply_timeseries_inside_apply_dimension_runs_per_pixel_lazily(catalog, settings):
    apply = {
        "process_id": "apply_dimension",
        "arguments": {"data": {"from_node": "load"}, "dimension": "t", "process": {"process_graph": {"udf": udf_node({"from_parameter": "data"}, CENTRED)}}},
        "result": True,
    }
    started = time.perf_counter()
    result = evaluate(graph({"apply": apply}, CORNER_AOI), catalog, settings)
    assert time.perf_counter() - started < 1  # nothing ran yet: the UDF runs per chunk when computed
    corner = graph({}, CORNER_AOI)
    corner["process_graph"]["load"]["result"] = True
    loaded = evaluate(corner, catalog, settings).compute()
    assert loaded.sizes["x"] * loaded.sizes["y"] > 5000
    values = loaded.values.astype("float64")
    with np.errstate(invalid="ignore"):
        expected = values - np.nanmean(values, axis=0, keepdims=True)
    np.testing.assert_allclose(result.compute().values, expected, rtol=1e-5)


def test_an_xarraydatacube_udf_as_reducer_drops_the_dimension(catalog, settings, loaded):
    reduce = {
        "process_id": "reduce_dimension",
        "arguments": {"data": {"from_node": "load"}, "dimension": "t", "reducer": {"process_graph": {"udf": udf_node({"from_parameter": "data"}, MAX_OVER_T)}}},
        "result": True,
    }
    result = evaluate(graph({"reduce": reduce}), catalog, settings)
    assert result.dims == ("bands", "y", "x")
    np.testing.assert_allclose(result.values, loaded.max("t").values)


def test_run_udf_on_the_cube_itself_and_saved_as_netcdf(catalog, settings, loaded, tmp_path):
    nodes = {
        "udf": {"process_id": "run_udf", "arguments": {"data": {"from_node": "load"}, "udf": DOUBLE_PLUS, "runtime": "python", "version": "3", "context": {"offset": 1}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "udf"}, "format": "netCDF"}, "result": True},
    }
    [(path, _)] = execute(graph(nodes), request_env(settings, catalog, user_id=None), tmp_path).files
    with xr.open_dataset(path) as saved:
        np.testing.assert_allclose(saved["B08"].values, loaded.sel(bands="B08").values * 2 + 1)


# --- what a user gets wrong -----------------------------------------------------------------


def error_of(code: str, settings, **arguments) -> OpenEOError:
    with pytest.raises(OpenEOError) as caught:
        run_udf(make_cube(), code, **{"runtime": "Python", **arguments}, env=ProcessEnv(settings=settings)).compute()
    assert 400 <= caught.value.status < 500
    return caught.value


@pytest.mark.parametrize(
    ("arguments", "code"),
    [({"runtime": "R"}, "InvalidRuntime"), ({"version": "2.7"}, "InvalidVersion"), ({"udf": "https://example.org/udf.py"}, "ProcessParameterInvalid")],
)
def test_runtime_version_and_urls_are_checked_before_anything_runs(settings, arguments, code):
    error = error_of(arguments.pop("udf", DOUBLE_PLUS), settings, **arguments)
    assert error.code == code


def test_code_without_a_convention_function_or_with_a_syntax_error(settings):
    assert "apply_datacube" in error_of("def main(x):\n    return x\n", settings).message
    error = error_of("import numpy\n\ndef apply_datacube(cube, context)\n    return cube\n", settings)
    assert error.code == "UdfError" and "line 3" in error.message


def test_a_udf_that_raises_names_the_exception_and_its_line(settings):
    code = "def apply_datacube(cube, context):\n    x = 1\n    raise ValueError('bands B04 and B08 are needed')\n"
    error = error_of(code, settings)
    assert error.code == "UdfError"
    assert "ValueError: bands B04 and B08 are needed" in error.message and "line 3" in error.message


def test_a_udf_that_loops_forever_is_stopped_at_the_time_limit(settings):
    code = "def apply_datacube(cube, context):\n    while True:\n        pass\n"
    started = time.perf_counter()
    error = error_of(code, settings.model_copy(update={"udf_timeout": 2}))
    assert "time limit of 2 s" in error.message
    assert time.perf_counter() - started < 15


def test_a_udf_that_takes_too_much_memory_gets_a_memory_error(settings):
    code = "import numpy as np\n\ndef apply_datacube(cube, context):\n    big = np.ones(2 * 1024**3)\n    return cube\n"
    error = error_of(code, settings.model_copy(update={"udf_memory_limit": 1024**3}))
    assert "memory" in error.message and "1 GiB" in error.message


def test_apply_timeseries_must_keep_the_length(settings):
    code = "def apply_timeseries(series, context):\n    return series.iloc[:1]\n"
    assert "keep the length" in error_of(code, settings).message


def test_apply_datacube_refuses_a_cube_over_the_size_limit(settings):
    error = error_of(DOUBLE_PLUS, settings.model_copy(update={"udf_max_values": 10}))
    assert "udf_max_values" in error.message


def test_what_the_udf_prints_is_logged_with_its_node(settings, caplog):
    code = "def apply_datacube(cube, context):\n    print('bands:', list(cube.get_array().bands.values))\n    return cube\n"
    env = ProcessEnv(settings=settings).for_node("myudf")
    with caplog.at_level("INFO", logger="terracube.process"):
        run_udf(make_cube(), code, "Python", env=env)
    [record] = [r for r in caplog.records if "UDF output" in r.getMessage()]
    assert "bands: ['B04', 'B08', 'SCL']" in record.getMessage() and record.node_id == "myudf"
