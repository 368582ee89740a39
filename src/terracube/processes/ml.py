"""Machine learning: random forests on scikit-learn, trained on vector cubes, applied per pixel.

``fit_class_random_forest`` / ``fit_regr_random_forest`` take what CDSE users pass: the
``predictors`` from ``aggregate_spatial`` (geometry x bands) and a ``target`` with one value per
geometry (a GeoJSON FeatureCollection or a vector cube). They return an ``MlModel``, which trains
when first needed (a prediction, a save): building a graph never reads pixels.

``predict_random_forest`` is a reducer for ``reduce_dimension(dimension="bands")``; it receives the
whole cube with the bands last and predicts every chunk at once with ``xarray.apply_ufunc``.

Saving and loading (``save_ml_model``, ``load_ml_model``) live in ``ml_io``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from terracube.cube import is_vector_cube
from terracube.errors import OpenEOError, ProcessParameterInvalid
from terracube.processes.geometries import GEOMETRY_DIM, geometries_from

CLASSIFICATION = "classification"
REGRESSION = "regression"
# The spec names the defaults it calls usual: sqrt for classification, a third for regression.
DEFAULT_MAX_VARIABLES = {CLASSIFICATION: "sqrt", REGRESSION: "onethird"}
# CDSE (and the openeo client, which drops `max_variables=None`) use the spec's CDSE convention:
# the training label of each feature is its property "target".
TARGET_PROPERTY = "target"


@dataclass
class MlModel:
    """A random forest with what it needs to be applied: its task and the band names, in order.

    Either ``fitted`` is given (a loaded model), or ``features`` (geometry x bands, lazy),
    ``labels`` and the training settings are, and the forest is fitted on first use of ``estimator``.
    """

    task: str
    bands: list[str]
    features: xr.DataArray | None = None
    labels: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    fitted: Any = None

    @cached_property
    def estimator(self) -> Any:
        if self.fitted is not None:
            return self.fitted
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        # The aggregated table is read only now: one row per training geometry.
        table = np.asarray(self.features.values, dtype="float64")
        # Geometries without data (outside the cube, all clouds) and unlabelled ones cannot teach anything.
        usable = np.isfinite(table).all(axis=1) & np.isfinite(self.labels)
        if not usable.any():
            raise ProcessParameterInvalid("No training sample has both predictor values and a target value (all are no-data).")
        forest = RandomForestClassifier if self.task == CLASSIFICATION else RandomForestRegressor
        # n_jobs=1: Dask already runs chunks in parallel; threads inside would oversubscribe.
        self.fitted = forest(n_jobs=1, **self.settings).fit(table[usable], self.labels[usable])
        return self.fitted

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Predictions for rows of band values; NaN where any value is missing (the spec's null)."""
        rows = values.reshape(-1, values.shape[-1]).astype("float64", copy=False)
        valid = np.isfinite(rows).all(axis=1)
        out = np.full(rows.shape[0], np.nan)
        if valid.any():
            out[valid] = self.estimator.predict(rows[valid])
        return out.reshape(values.shape[:-1])

    def __repr__(self) -> str:
        return f"MlModel({self.task}, random forest on {self.bands})"


def require_model(value: Any, parameter: str = "model") -> MlModel:
    if not isinstance(value, MlModel):
        raise ProcessParameterInvalid(
            f"'{parameter}' must be an ml-model (from fit_class_random_forest, fit_regr_random_forest or load_ml_model), "
            f"got {type(value).__name__}."
        )
    return value


# --- training -------------------------------------------------------------------------------


def _predictor_table(predictors: Any) -> tuple[xr.DataArray, list[str]]:
    """The vector cube as rows (geometries) x columns (bands), still lazy, and the column names."""
    if not is_vector_cube(predictors) or GEOMETRY_DIM not in predictors.dims:
        raise ProcessParameterInvalid(
            "'predictors' must be a vector cube with a geometry dimension, e.g. the result of aggregate_spatial."
        )
    others = [d for d in predictors.dims if d != GEOMETRY_DIM]
    if len(others) != 1:
        raise ProcessParameterInvalid(
            f"'predictors' must have exactly one dimension besides '{GEOMETRY_DIM}' (the bands), it has {others or 'none'}; "
            "reduce the others first, e.g. the time with reduce_dimension."
        )
    column = others[0]
    names = [str(v) for v in predictors.coords[column].values] if column in predictors.coords else [str(i) for i in range(predictors.sizes[column])]
    return predictors.transpose(GEOMETRY_DIM, column), names


def _target_values(target: Any, count: int) -> np.ndarray:
    """One training value per geometry, from a vector cube's values or the features' properties."""
    if is_vector_cube(target) and target.ndim == 1:
        values = list(target.values)
    else:
        try:
            properties = geometries_from(target, "target").properties
        except OpenEOError:
            raise
        except Exception as error:  # noqa: BLE001 - a malformed GeoJSON document is the user's input
            raise ProcessParameterInvalid(f"'target' must be a GeoJSON FeatureCollection or a vector cube: {error}") from None
        values = [_label_of(p, i) for i, p in enumerate(properties)]
    if len(values) != count:
        raise ProcessParameterInvalid(
            f"'target' has {len(values)} features but 'predictors' has {count} geometries; "
            "give the same geometries, in the same order, to aggregate_spatial and as target."
        )
    try:
        return np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise ProcessParameterInvalid("The target values must be numbers (a class code or a quantity).") from None


def _label_of(properties: dict, index: int) -> Any:
    if TARGET_PROPERTY in properties:
        return properties[TARGET_PROPERTY]
    if len(properties) == 1:
        return next(iter(properties.values()))
    raise ProcessParameterInvalid(
        f"Feature {index} of 'target' needs a property '{TARGET_PROPERTY}' with its training value "
        f"(it has {sorted(properties) or 'no properties'})."
    )


def _max_features(max_variables: Any, count: int, task: str) -> Any:
    """The spec's ``max_variables`` as scikit-learn's ``max_features``."""
    choice = DEFAULT_MAX_VARIABLES[task] if max_variables is None else max_variables
    if isinstance(choice, bool) or not isinstance(choice, (int, str)):
        raise ProcessParameterInvalid("'max_variables' must be an integer or one of all, log2, onethird, sqrt.")
    if isinstance(choice, int):
        if not 1 <= choice <= count:
            raise ProcessParameterInvalid(f"'max_variables' must be between 1 and the number of predictors ({count}), got {choice}.")
        return choice
    named = {"all": count, "log2": max(1, int(math.log2(count))), "sqrt": max(1, int(math.sqrt(count))), "onethird": max(1, count // 3)}
    if choice not in named:
        raise ProcessParameterInvalid(f"'max_variables' must be an integer or one of {', '.join(named)}, got {choice!r}.")
    return named[choice]


def _fit(task: str, predictors: Any, target: Any, max_variables: Any, num_trees: Any, seed: Any) -> MlModel:
    table, bands = _predictor_table(predictors)
    labels = _target_values(target, table.shape[0])
    if isinstance(num_trees, bool) or not isinstance(num_trees, int) or num_trees < 1:
        raise ProcessParameterInvalid(f"'num_trees' must be an integer of at least 1, got {num_trees!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ProcessParameterInvalid(f"'seed' must be an integer or null, got {seed!r}.")
    settings = {"n_estimators": num_trees, "max_features": _max_features(max_variables, len(bands), task), "random_state": seed}
    return MlModel(task, bands, table, labels, settings)


def fit_class_random_forest(predictors: Any, target: Any, max_variables: Any = None, num_trees: int = 100, seed: int | None = None) -> MlModel:
    return _fit(CLASSIFICATION, predictors, target, max_variables, num_trees, seed)


def fit_regr_random_forest(predictors: Any, target: Any, max_variables: Any = None, num_trees: int = 100, seed: int | None = None) -> MlModel:
    return _fit(REGRESSION, predictors, target, max_variables, num_trees, seed)


# Clients omit ``max_variables`` when the user gives none (the openeo client drops None), and CDSE
# then uses its default; so do we, rather than reject a script that runs there.
fit_class_random_forest.lenient_parameters = ("max_variables",)  # type: ignore[attr-defined]
fit_regr_random_forest.lenient_parameters = ("max_variables",)  # type: ignore[attr-defined]


# --- prediction -----------------------------------------------------------------------------


def predict_random_forest(data: Any, model: Any) -> xr.DataArray:
    """The model applied along the last dimension of ``data`` (``reduce_dimension`` puts it there)."""
    model = require_model(model)
    if not isinstance(data, xr.DataArray) or data.ndim == 0:
        raise ProcessParameterInvalid("predict_random_forest must be the reducer of reduce_dimension over the bands.")
    dim = data.dims[-1]
    if dim in data.coords:
        labels = [str(v) for v in data.coords[dim].values]
        missing = [b for b in model.bands if b not in labels]
        if missing:
            raise ProcessParameterInvalid(
                f"The model was trained on {model.bands}; the cube's '{dim}' lacks {missing} (it has {labels})."
            )
        data = data.sel({dim: model.bands})  # the training order, whatever the cube's order
    elif data.sizes[dim] != len(model.bands):
        raise ProcessParameterInvalid(f"The model expects {len(model.bands)} values per pixel, the cube has {data.sizes[dim]}.")
    model.estimator  # train now, once, rather than in every chunk's task  # noqa: B018
    if data.chunks is not None:
        data = data.chunk({dim: -1})
    return xr.apply_ufunc(
        model.predict, data, input_core_dims=[[dim]], dask="parallelized", output_dtypes=["float64"], keep_attrs=False
    )
