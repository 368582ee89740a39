"""fit_curve (as apply_dimension's callback) and predict_curve on labelled cubes."""

from __future__ import annotations

import numpy as np
import pytest

from terracube.errors import ProcessParameterInvalid
from terracube.processes.cubes_apply import apply_dimension
from terracube.processes.curves import fit_curve, predict_curve

from tests.processes.helpers import callback, make_cube

TIMES = ["2021-07-01", "2021-07-06", "2021-07-11", "2021-07-16", "2021-07-21"]
DAY = 86400.0

LINEAR = {  # parameters[0] + parameters[1] * x
    "p0": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "parameters"}, "index": 0}},
    "p1": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "parameters"}, "index": 1}},
    "m": {"process_id": "multiply", "arguments": {"x": {"from_node": "p1"}, "y": {"from_parameter": "x"}}},
    "s": {"process_id": "add", "arguments": {"x": {"from_node": "p0"}, "y": {"from_node": "m"}}},
}


def _fitter(guess=(0, 0), **arguments):
    graph = {name: dict(node) for name, node in LINEAR.items()}
    graph["s"] = {**graph["s"], "result": True}
    return callback({"f": {"process_id": "fit_curve", "arguments": {
        "data": {"from_parameter": "data"}, "parameters": list(guess), "function": {"process_graph": graph}, **arguments}}})


@pytest.fixture
def lines():
    """Per pixel a line in days since the first date: offset a, slope b (one pixel with a gap)."""
    seconds = np.array(TIMES, dtype="datetime64[s]").astype("int64").astype(float)
    days = (seconds - seconds[0]) / DAY
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[0.5, -1.0], [2.0, 0.0]])
    values = a[None] + b[None] * days[:, None, None]
    values[2, 1, 1] = np.nan
    cube = make_cube(values[:, None], times=TIMES, bands=["B04"], shape=(2, 2), chunks={"x": 1})
    return cube, a, b, seconds


def test_fit_curve_gives_each_pixel_its_parameters(lines):
    cube, a, b, seconds = lines
    fitted = apply_dimension(cube, _fitter(), "t")
    assert fitted.dims == cube.dims
    assert list(fitted["t"].values) == [0, 1]
    assert fitted.chunks is not None
    slope, offset = fitted.values[1, 0], fitted.values[0, 0]
    np.testing.assert_allclose(slope * DAY, b, atol=1e-6)  # x is seconds since 1970
    np.testing.assert_allclose(offset + slope * seconds[0], a, atol=1e-4)
    assert fitted.odc.crs == cube.odc.crs


def test_fit_curve_keeps_no_data_out_of_the_fit_or_gives_no_data(lines):
    cube = lines[0]
    ignored = apply_dimension(cube, _fitter(), "t").values
    assert np.isfinite(ignored[:, 0, 1, 1]).all()
    considered = apply_dimension(cube, _fitter(ignore_nodata=False), "t").values
    assert np.isnan(considered[:, 0, 1, 1]).all()
    np.testing.assert_allclose(considered[:, 0, 0, 0], ignored[:, 0, 0, 0])


def test_fit_curve_on_a_plain_array_uses_the_positions_as_x():
    function = callback({**{k: dict(v) for k, v in LINEAR.items()}})
    assert np.allclose(fit_curve([1, 3, None, 7], [0, 0], function), [1.0, 2.0])


def test_fit_curve_needs_an_initial_guess(lines):
    with pytest.raises(ProcessParameterInvalid, match="parameters"):
        fit_curve(lines[0], [], callback({**{k: dict(v) for k, v in LINEAR.items()}}))


def test_predict_curve_on_dates_continues_the_lines(lines):
    cube, a, b, _ = lines
    fitted = apply_dimension(cube, _fitter(), "t")
    function = callback({k: dict(v) for k, v in LINEAR.items()})
    predicted = predict_curve(fitted, function, "t", ["2021-07-31", "2021-08-10T00:00:00Z"])
    assert predicted.dims == cube.dims
    assert [str(v)[:10] for v in predicted["t"].values] == ["2021-07-31", "2021-08-10"]
    assert predicted.attrs["dimension_types"]["t"] == "temporal"
    assert predicted.chunks is not None
    np.testing.assert_allclose(predicted.values[:, 0], [a + b * 30, a + b * 40], atol=1e-4)


def test_predict_curve_on_numbers():
    cube = make_cube(np.array([1.0, 2.0]).reshape(2, 1, 1, 1), times=["2021-07-01", "2021-07-02"], bands=["B04"], shape=(1, 1))
    parameters = cube.rename(t="p").assign_coords(p=[0, 1])
    predicted = predict_curve(parameters, callback({k: dict(v) for k, v in LINEAR.items()}), "p", [0, 10])
    assert list(predicted["p"].values) == [0, 10]
    assert predicted.attrs["dimension_types"]["p"] == "other"
    assert predicted.values.ravel().tolist() == [1.0, 21.0]


def test_predict_curve_needs_labels(lines):
    with pytest.raises(ProcessParameterInvalid, match="labels"):
        predict_curve(lines[0], callback({k: dict(v) for k, v in LINEAR.items()}), "t")


def test_predict_curve_on_numbers_makes_a_time_axis_other(lines):
    fitted = apply_dimension(lines[0], _fitter(), "t")
    predicted = predict_curve(fitted, callback({k: dict(v) for k, v in LINEAR.items()}), "t", [0, 1.5e9])
    assert list(predicted["t"].values) == [0, 1.5e9]
    assert predicted.attrs["dimension_types"]["t"] == "other"


HARMONIC = {  # a + b * sin(c * x): a season
    **{f"p{i}": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "parameters"}, "index": i}} for i in range(3)},
    "cx": {"process_id": "multiply", "arguments": {"x": {"from_node": "p2"}, "y": {"from_parameter": "x"}}},
    "s": {"process_id": "sin", "arguments": {"x": {"from_node": "cx"}}},
    "bs": {"process_id": "multiply", "arguments": {"x": {"from_node": "p1"}, "y": {"from_node": "s"}}},
    "r": {"process_id": "add", "arguments": {"x": {"from_node": "p0"}, "y": {"from_node": "bs"}}, "result": True},
}


def test_a_block_of_pixels_is_fitted_as_scipy_fits_each_pixel():
    from terracube.processes.curves import _fit_block, _fit_one, _model

    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 24)
    a, b, c = rng.uniform(0.2, 0.5, 60), rng.uniform(0.1, 0.3, 60), rng.uniform(0.55, 0.65, 60)
    y = a[:, None] + b[:, None] * np.sin(c[:, None] * x) + rng.normal(0, 0.01, (60, len(x)))
    y[rng.random(y.shape) < 0.2] = np.nan
    y[0, 3:] = np.nan  # three values for three parameters: still a fit
    y[1, 2:] = np.nan  # two values: no fit
    function = callback(HARMONIC)
    block = _fit_block(y.reshape(6, 10, -1), x, function, [0.3, 0.2, 0.6], True).reshape(60, 3)
    one_by_one = np.array([_fit_one(row, x, _model(function), [0.3, 0.2, 0.6], True) for row in y])
    assert np.isnan(block[1]).all() and np.isnan(one_by_one[1]).all()
    np.testing.assert_allclose(block[2:], one_by_one[2:], atol=1e-6)
    np.testing.assert_allclose(block[2:, 2], c[2:], atol=0.02)  # and they are the season's frequency


def test_predict_curve_gives_no_data_where_the_fit_gave_none(lines):
    fitted = apply_dimension(lines[0], _fitter(ignore_nodata=False), "t")
    predicted = predict_curve(fitted, callback({k: dict(v) for k, v in LINEAR.items()}), "t", ["2021-07-31"]).values
    assert np.isnan(predicted[0, 0, 1, 1]) and np.isfinite(predicted[0, 0, 0, 0])
