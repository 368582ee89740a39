"""fit_curve and predict_curve: a model function ``y = f(x, parameters)`` fitted by non-linear
least squares (Levenberg-Marquardt, as ``scipy.optimize.curve_fit``) and evaluated on new labels.

fit_curve works on a labelled array, as the spec says: in a cube it is the callback of
apply_dimension, which hands it the cube with the dimension last; it then fits the pixels of each
dask block together (``_fit_block``, lazy through ``xr.apply_ufunc``) and answers the parameters
along that dimension. The labels are the ``x`` values; date(-time)
labels become seconds since 1970-01-01 (UTC), in fit_curve and predict_curve alike, so the
parameters of one are right for the other.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import curve_fit

from terracube.errors import ProcessParameterInvalid
from terracube.processes.cubes import cube_attrs, require_callback, require_cube, require_dimension
from terracube.processes.cubes_dimensions import dimension_types, temporal_label, with_types

_X = "__x__"


def label_numbers(labels: Any) -> np.ndarray:
    """Labels as the numbers ``x``: numbers as they are, dates as seconds since the Unix epoch."""
    if isinstance(labels, pd.DatetimeIndex):
        array = np.asarray(labels.tz_convert(None) if labels.tz is not None else labels)
    else:
        array = np.asarray([temporal_label(v) if isinstance(v, str) else v for v in labels])
    if array.dtype.kind == "M":
        return (array.astype("datetime64[ns]").astype("int64") / 1e9).astype("float64")
    if array.dtype.kind not in "iuf":
        raise ProcessParameterInvalid(f"Labels must be numbers, dates or date-times to serve as 'x'; got {list(labels)[:5]}.")
    return array.astype("float64")


def _model(function: Any):
    """The callback as a numpy function ``f(x_vector, *parameters) -> y_vector`` (one pixel)."""

    def evaluate(x: np.ndarray, *parameters: float) -> np.ndarray:
        result = function(x=xr.DataArray(np.asarray(x, dtype="float64"), dims=[_X]), parameters=[float(p) for p in parameters])
        values = result.values if isinstance(result, xr.DataArray) else np.asarray(result, dtype="float64")
        return np.broadcast_to(np.asarray(values, dtype="float64"), np.shape(x))

    return evaluate


def _block_model(function: Any, x: np.ndarray):
    """The callback on many pixels at once: ``f(P) -> Y`` with P (pixels, parameters), Y (pixels, x).

    The math processes broadcast labelled arrays, so one evaluation of the child graph serves a
    whole block of pixels; evaluating it per pixel costs milliseconds each.
    """
    x_array = xr.DataArray(x, dims=[_X])

    def evaluate(parameters: np.ndarray) -> np.ndarray:
        result = function(x=x_array, parameters=xr.DataArray(parameters, dims=["__pixel__", "__parameter__"]))
        template = xr.DataArray(np.empty((len(parameters), len(x))), dims=["__pixel__", _X])
        if isinstance(result, xr.DataArray):  # a function may not use every input: broadcast
            return np.asarray(xr.broadcast(result, template)[0].transpose("__pixel__", _X).values, dtype="float64")
        return np.broadcast_to(np.asarray(result, dtype="float64"), template.shape)

    return evaluate


def _fit_block(y: np.ndarray, x: np.ndarray, function: Any, guess: list[float], ignore_nodata: bool) -> np.ndarray:
    """Least squares for every pixel of a block (pixels along the leading axes, ``x`` along the last).

    A Levenberg-Marquardt iteration on all pixels at once (Marquardt's scaling, forward-difference
    Jacobian as MINPACK's ``curve_fit`` uses); pixels it does not bring to convergence are fitted
    again one by one with scipy, so the answer is scipy's wherever the two could differ.
    """
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1]).astype("float64")
    count = len(guess)
    valid = ~np.isnan(y) if ignore_nodata else np.ones(y.shape, dtype=bool)
    fittable = valid.sum(axis=1) >= count
    if not ignore_nodata:
        fittable &= ~np.isnan(y).any(axis=1)
    result = np.full((len(y), count), np.nan)
    if fittable.any():
        rows = np.flatnonzero(fittable)
        fitted, converged = _levenberg_marquardt(_block_model(function, x), y[rows], valid[rows], np.asarray(guess, dtype="float64"))
        result[rows[converged]] = fitted[converged]
        model = _model(function)
        for row in rows[~converged]:
            result[row] = _fit_one(y[row], x, model, guess, ignore_nodata)
    return result.reshape(*shape, count)


def _levenberg_marquardt(model, y: np.ndarray, valid: np.ndarray, guess: np.ndarray, iterations: int = 200):
    observed = np.where(valid, y, 0.0)
    parameters = np.tile(guess, (len(y), 1))
    damping = np.full(len(y), 1e-3)
    step = np.sqrt(np.finfo("float64").eps)

    def residuals(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.where(valid, observed - model(p), 0.0)

    current = residuals(parameters)
    cost = np.einsum("ij,ij->i", current, current)
    converged = np.zeros(len(y), dtype=bool)
    for _ in range(iterations):
        active = ~converged & np.isfinite(cost)
        if not active.any():
            break
        jacobian = np.empty((len(y), y.shape[1], len(guess)))
        for j in range(len(guess)):
            h = step * np.abs(parameters[:, j])
            h[h == 0] = step
            moved = parameters.copy()
            moved[:, j] += h
            jacobian[:, :, j] = (current - residuals(moved)) / h[:, None]  # d model / d p_j, masked
        normal = np.einsum("ikj,ikl->ijl", jacobian, jacobian)
        gradient = np.einsum("ikj,ik->ij", jacobian, current)
        scaled = normal + damping[:, None, None] * np.einsum("ijj->ij", normal)[:, :, None] * np.eye(len(guess))
        with np.errstate(all="ignore"):
            try:
                delta = np.linalg.solve(scaled, gradient[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
        trial = parameters + delta
        trial_residuals = residuals(trial)
        trial_cost = np.einsum("ij,ij->i", trial_residuals, trial_residuals)
        better = active & np.isfinite(trial_cost) & (trial_cost <= cost)
        small = np.abs(delta) <= 1e-10 * (np.abs(parameters) + 1e-10)
        converged |= better & (small.all(axis=1) | (cost - trial_cost <= 1e-12 * np.maximum(cost, 1e-300)))
        converged |= active & (cost <= 1e-30)
        parameters[better] = trial[better]
        current[better] = trial_residuals[better]
        cost[better] = trial_cost[better]
        damping = np.where(better, damping / 10, damping * 10)
        converged |= active & (damping > 1e16)  # no step lowers the cost: a minimum, as far as it can be found
    finite = np.isfinite(parameters).all(axis=1)
    return parameters, converged & finite


def _fit_one(y: np.ndarray, x: np.ndarray, model, guess: list[float], ignore_nodata: bool) -> np.ndarray:
    valid = ~np.isnan(y) if ignore_nodata else np.ones(y.shape, dtype=bool)
    if valid.sum() < len(guess):
        return np.full(len(guess), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fitted, _ = curve_fit(model, x[valid], y[valid], p0=guess, maxfev=2000)
        except (RuntimeError, ValueError, TypeError):
            return np.full(len(guess), np.nan)
    return np.asarray(fitted, dtype="float64")


def _guess(parameters: Any) -> list[float]:
    if isinstance(parameters, xr.DataArray):
        raise ProcessParameterInvalid("'parameters' (the initial guess) must be an array of numbers, not a data cube.")
    values = list(parameters or [])
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ProcessParameterInvalid(f"'parameters' must be an array of at least one number, got {parameters!r}.")
    return [float(v) for v in values]


def fit_curve(data: Any, parameters: list, function: Any, ignore_nodata: bool = True) -> Any:
    """Optimal parameters of ``function`` for ``y`` = the values and ``x`` = the labels.

    On a labelled array (list or 1-D): a list of numbers. On a cube (inside apply_dimension): per
    pixel along the last dimension, the parameters replacing that dimension's values.
    """
    require_callback(function, "function")
    guess = _guess(parameters)
    if not isinstance(data, xr.DataArray):
        if not isinstance(data, (list, tuple)):
            raise ProcessParameterInvalid(f"'data' must be a labelled array, got {type(data).__name__}.")
        values = np.asarray([np.nan if v is None else v for v in data], dtype="float64")
        return [float(v) for v in _fit_one(values, np.arange(len(values), dtype="float64"), _model(function), guess, bool(ignore_nodata))]
    dim = data.dims[-1]
    labels = data.indexes[dim] if dim in data.indexes else range(data.sizes[dim])
    x = label_numbers(labels)
    values = data if data.dtype.kind == "f" else data.astype("float64")
    if values.chunks is not None:
        values = values.chunk({dim: -1})
    fitted = xr.apply_ufunc(
        _fit_block,
        values.drop_vars([n for n, c in values.coords.items() if dim in c.dims]),
        kwargs={"x": x, "function": function, "guess": guess, "ignore_nodata": bool(ignore_nodata)},
        input_core_dims=[[dim]],
        output_core_dims=[["__parameters__"]],
        dask="parallelized",
        output_dtypes=["float64"],
        dask_gufunc_kwargs={"output_sizes": {"__parameters__": len(guess)}},
    )
    fitted = fitted.rename({"__parameters__": dim}).assign_coords({dim: np.arange(len(guess))})
    fitted.attrs = cube_attrs(data)
    return fitted


def predict_curve(parameters: xr.DataArray, function: Any, dimension: str, labels: list | None = None) -> xr.DataArray:
    """``function`` evaluated at every label for every pixel, with the pixel's parameters taken from
    ``dimension`` of the cube, which then holds the given labels instead."""
    require_cube(parameters, "parameters")
    require_dimension(parameters, dimension)
    require_callback(function, "function")
    if labels is None:
        raise ProcessParameterInvalid(
            "'labels' must be given: this process only receives the parameters, so there are no no-data values to predict."
        )
    if not labels:
        raise ProcessParameterInvalid("'labels' must hold at least one label.")
    x = label_numbers(labels)
    temporal = all(isinstance(v, str) for v in labels)
    values = parameters if parameters.dtype.kind == "f" else parameters.astype("float64")
    values = values.drop_vars([n for n, c in values.coords.items() if dimension in c.dims]).transpose(..., dimension)
    # One evaluation of the child graph for the whole cube: the math processes broadcast the
    # pixels' parameters (the last dimension) against the labels.
    predicted = function(x=xr.DataArray(x, dims=["__labels__"]), parameters=values)
    template = values.isel({dimension: 0}, drop=True).expand_dims({"__labels__": len(x)}, axis=-1)
    if not isinstance(predicted, xr.DataArray):
        predicted = xr.full_like(template, float(predicted), dtype="float64")
    predicted = xr.broadcast(predicted, template)[0].where(~values.isnull().any(dimension))
    new_labels = pd.DatetimeIndex([temporal_label(v) for v in labels]) if temporal else list(labels)
    result = predicted.rename({"__labels__": dimension}).assign_coords({dimension: new_labels}).transpose(*parameters.dims)
    result.attrs = cube_attrs(parameters)
    types = dimension_types(parameters)
    if temporal:
        types[dimension] = "temporal"
    elif types.get(dimension) == "temporal":
        types[dimension] = "other"  # number labels on what was a time axis
    return with_types(result, types)
