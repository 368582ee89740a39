"""apply and reduce_dimension with the math processes agree with numpy, on random cubes with NaN.

Property-based (hypothesis): each example is a one-node process graph evaluated by the engine on a
dask-backed cube, compared with the numpy expression a user would write by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph

from tests.processes.helpers import make_cube

# Values up to 1e4 and below 0 are on purpose: exp overflows, ln and sqrt of negatives are NaN as the
# spec says, and numpy says so with RuntimeWarnings, in the engine's dask threads as in the oracle.
NUMPY_NOISE = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SHAPE = (3, 2, 4, 5)  # t, bands, y, x
VALUES = st.one_of(st.floats(min_value=-1e4, max_value=1e4, width=32), st.just(float("nan")))
CUBES = arrays(np.float32, SHAPE, elements=VALUES)

# openEO process -> numpy, for apply (elementwise)
UNARY = {
    "absolute": np.abs,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "ln": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "floor": np.floor,
    "ceil": np.ceil,
    "sgn": np.sign,
}
# openEO reducer -> numpy with the spec's default ignore_nodata=true (NaN skipped)
REDUCERS = {
    "mean": np.nanmean,
    "median": np.nanmedian,
    "min": np.nanmin,
    "max": np.nanmax,
    "sum": np.nansum,
    "sd": lambda a, axis: np.nanstd(a, axis=axis, ddof=1),
    "variance": lambda a, axis: np.nanvar(a, axis=axis, ddof=1),
}
DIMENSIONS = {"t": 0, "bands": 1}


def run(node: dict, cube):
    graph = {"process_graph": {"n": {**node, "arguments": {"data": {"from_parameter": "cube"}, **node["arguments"]}, "result": True}}}
    return evaluate_process_graph(parse_process_graph(graph, parameters=[{"name": "cube"}]), parameters={"cube": cube})


def callback(process_id: str, parameter: str, **arguments) -> dict:
    """A one-node callback reading the callback parameter ``parameter`` (``x`` for apply, ``data`` for reducers)."""
    argument = "p" if process_id == "exp" else parameter  # exp's argument is named p
    node = {"process_id": process_id, "arguments": {argument: {"from_parameter": parameter}, **arguments}, "result": True}
    return {"process_graph": {"f": node}}


def with_nan_all_slices(values: np.ndarray) -> np.ndarray:
    """Guarantee a pixel whose every value along t is NaN: reducers must give NaN there, not fail."""
    values = values.copy()
    values[:, :, 0, 0] = np.nan
    return values


@NUMPY_NOISE
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=CUBES, process_id=st.sampled_from(sorted(UNARY)))
def test_apply_agrees_with_numpy(values, process_id):
    cube = make_cube(values, times=("2021-07-01", "2021-07-06", "2021-07-11"), bands=("B04", "B08"), chunks={"t": 1})
    result = run({"process_id": "apply", "arguments": {"process": callback(process_id, "x")}}, cube)
    with np.errstate(all="ignore"):
        expected = UNARY[process_id](values)  # in the cube's float32, as numpy on the same pixels (exp(89) overflows)
    assert result.dims == cube.dims and list(result.bands.values) == ["B04", "B08"]
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


@NUMPY_NOISE
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=CUBES, reducer=st.sampled_from(sorted(REDUCERS)), dimension=st.sampled_from(sorted(DIMENSIONS)))
def test_reduce_dimension_agrees_with_numpy(values, reducer, dimension):
    values = with_nan_all_slices(values)
    cube = make_cube(values, times=("2021-07-01", "2021-07-06", "2021-07-11"), bands=("B04", "B08"), chunks={"t": 1})
    result = run({"process_id": "reduce_dimension", "arguments": {"dimension": dimension, "reducer": callback(reducer, "data")}}, cube)
    axis = DIMENSIONS[dimension]
    with np.errstate(all="ignore"):  # all-NaN slices warn too: NUMPY_NOISE
        expected = REDUCERS[reducer](values.astype(np.float64), axis=axis)
    if reducer == "sum":
        # openEO: the sum of no valid value is NaN (no-data), numpy's nansum says 0.
        expected = np.where(np.isnan(values).all(axis=axis), np.nan, expected)
    assert dimension not in result.dims and result.dims == tuple(d for d in cube.dims if d != dimension)
    np.testing.assert_allclose(result.values, expected, rtol=1e-4, atol=1e-3, equal_nan=True)
