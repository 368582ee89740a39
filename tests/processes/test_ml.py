"""Random forests as CDSE users run them: aggregate_spatial -> fit -> reduce_dimension(predict).

The training sites are small squares on the embedded sample (the Ahr valley after the flood),
picked where the NDVI is homogeneous and labelled by its class; a forest trained on their band
means must give those classes back on their pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping

from terracube.errors import OpenEOError
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.execute import execute, request_env
from terracube.processes.env import ProcessEnv
from terracube.processes.ml import MlModel
from terracube.settings import Settings
from tests.conftest import AFTER, TUTORIAL_AOI

BANDS = ["B02", "B03", "B04", "B08"]
# NDVI classes: water, mud and roofs; sparse vegetation; dense vegetation.
CLASSES = {0: (-1.0, 0.3), 1: (0.55, 0.75), 2: (0.84, 1.0)}
PER_CLASS = 6
EDGE = 3  # a training site is EDGE x EDGE pixels


def _mean_over_time():
    return {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}


def graph_nodes(sites: dict, fit: str | None = "fit_class_random_forest", model: dict | None = None) -> dict:
    """load -> mean over time -> (aggregate_spatial -> fit) and/or reduce_dimension(predict)."""
    nodes = {
        "load": {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, "bands": BANDS}},
        "time": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "load"}, "dimension": "t", "reducer": _mean_over_time()}},
    }
    if fit:
        nodes["agg"] = {"process_id": "aggregate_spatial", "arguments": {"data": {"from_node": "time"}, "geometries": sites, "reducer": _mean_over_time()}}
        nodes["fit"] = {"process_id": fit, "arguments": {"predictors": {"from_node": "agg"}, "target": sites, "max_variables": "sqrt", "num_trees": 50, "seed": 42}}
    if not fit and model is None:
        return nodes
    predict = {"process_id": "predict_random_forest", "arguments": {"data": {"from_parameter": "data"}, "model": {"from_parameter": "context"}}, "result": True}
    nodes["predict"] = {
        "process_id": "reduce_dimension",
        # As the openeo client writes it: the model travels in the context.
        "arguments": {"data": {"from_node": "time"}, "dimension": "bands", "reducer": {"process_graph": {"p": predict}}, "context": model or {"from_node": "fit"}},
    }
    return nodes


def run(nodes: dict, result: str, settings, catalog):
    nodes = {k: dict(v) for k, v in nodes.items()}
    nodes[result]["result"] = True
    return evaluate_process_graph(parse_process_graph({"process_graph": nodes}), env=ProcessEnv(catalog=catalog, settings=settings))


def compute_scene(settings, catalog):
    """The bands (mean over time) as numpy, and the NDVI."""
    cube = run(graph_nodes({}, fit=None), "time", settings, catalog).compute()
    ndvi = ((cube.sel(bands="B08") - cube.sel(bands="B04")) / (cube.sel(bands="B08") + cube.sel(bands="B04"))).values
    return cube, ndvi


def training_sites(cube, ndvi):
    """Homogeneous EDGE x EDGE windows per NDVI class, as a WGS84 FeatureCollection with 'target'."""
    transformer = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)

    def to_wgs84(shape):
        return shapely.transform(shape, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))

    rng = np.random.default_rng(0)
    features, windows = [], []
    for label, (low, high) in CLASSES.items():
        ok = (ndvi >= low) & (ndvi <= high)
        candidates = [(r, c) for r in range(0, ndvi.shape[0] - EDGE, EDGE) for c in range(0, ndvi.shape[1] - EDGE, EDGE) if ok[r:r + EDGE, c:c + EDGE].all()]
        assert len(candidates) >= PER_CLASS, label
        for index in rng.choice(len(candidates), PER_CLASS, replace=False):
            r, c = candidates[index]
            x0, y0 = float(cube.x[c]), float(cube.y[r])
            # Pixel centres are 10 m apart: a square through the outer centres takes exactly the window.
            square = box(x0 - 4, y0 - 10 * (EDGE - 1) - 4, x0 + 10 * (EDGE - 1) + 4, y0 + 4)
            features.append({"type": "Feature", "geometry": mapping(to_wgs84(square)), "properties": {"target": label}})
            windows.append((label, r, c))
    return {"type": "FeatureCollection", "features": features}, windows


@pytest.fixture(scope="module")
def scene(settings, catalog):
    return compute_scene(settings, catalog)


@pytest.fixture(scope="module")
def sites(scene):
    return training_sites(*scene)


def agreement(predicted: np.ndarray, windows) -> float:
    """The share of the training sites' pixels predicted as their class."""
    hits = [predicted[r:r + EDGE, c:c + EDGE] == label for label, r, c in windows]
    return float(np.mean(hits))


def test_a_classifier_trained_on_sites_gives_their_classes_back(sites, settings, catalog):
    collection, windows = sites
    predicted = run(graph_nodes(collection), "predict", settings, catalog)
    assert predicted.dims == ("y", "x") and predicted.chunks is not None  # lazy until computed
    values = predicted.values
    assert agreement(values, windows) > 0.9
    assert set(np.unique(values[np.isfinite(values)])) <= set(CLASSES)


def test_a_regression_forest_predicts_the_ndvi_it_was_trained_on(sites, scene, settings, catalog):
    collection, windows = sites
    _, ndvi = scene
    targets = {"type": "FeatureCollection", "features": []}
    for feature, (_, r, c) in zip(collection["features"], windows):
        targets["features"].append({**feature, "properties": {"ndvi": float(ndvi[r:r + EDGE, c:c + EDGE].mean())}})
    nodes = graph_nodes(targets, fit="fit_regr_random_forest")
    nodes["fit"]["arguments"]["max_variables"] = "all"
    predicted = run(nodes, "predict", settings, catalog).values
    errors = [np.abs(predicted[r:r + EDGE, c:c + EDGE] - ndvi[r:r + EDGE, c:c + EDGE]).mean() for _, r, c in windows]
    assert np.mean(errors) < 0.1


def test_max_variables_may_be_left_out_as_the_openeo_client_does(sites, settings, catalog):
    collection, _ = sites
    nodes = graph_nodes(collection)
    del nodes["fit"]["arguments"]["max_variables"]
    model = run(nodes, "fit", settings, catalog)
    assert isinstance(model, MlModel) and model.bands == BANDS
    assert model.fitted is None and model.features.chunks is not None  # nothing read or trained yet
    assert model.estimator.max_features == 2  # sqrt of 4 bands, the spec's usual choice for classes


def test_a_saved_model_loads_back_and_predicts_the_same(sites, data_dir, tmp_path, catalog):
    collection, _ = sites
    settings = Settings(data_dir=data_dir, load_stac_local_dirs=[tmp_path])
    nodes = graph_nodes(collection)
    nodes["save"] = {"process_id": "save_ml_model", "arguments": {"data": {"from_node": "fit"}}, "result": True}
    del nodes["predict"]
    execution = execute({"process_graph": nodes}, request_env(settings, catalog, user_id=None), tmp_path / "job")
    names = [path.name for path, _ in execution.files]
    assert names == ["model.json", "model.skops"]
    import json

    item = json.loads((tmp_path / "job" / "model.json").read_text())
    assert item["properties"]["ml-model:prediction_type"] == "classification"
    assert item["assets"]["model"]["roles"] == ["ml-model:checkpoint"]

    trained = run(graph_nodes(collection), "predict", settings, catalog).values
    for location in (str(tmp_path / "job" / "model.json"), str(tmp_path / "job" / "model.skops")):
        loaded = graph_nodes({}, fit=None, model={"from_node": "loadmodel"})
        loaded["loadmodel"] = {"process_id": "load_ml_model", "arguments": {"id": location}}
        again = run(loaded, "predict", settings, catalog).values
        np.testing.assert_array_equal(again, trained)


def test_a_model_file_outside_the_allowed_directories_is_refused(settings, catalog, tmp_path):
    (tmp_path / "model.skops").write_bytes(b"not a model")
    nodes = {"m": {"process_id": "load_ml_model", "arguments": {"id": str(tmp_path / "model.skops")}}}
    with pytest.raises(OpenEOError) as error:
        run(nodes, "m", settings, catalog)
    assert error.value.status == 400 and "outside the directories" in error.value.message


def test_a_file_that_is_not_a_skops_model_is_refused(data_dir, catalog, tmp_path):
    settings = Settings(data_dir=data_dir, load_stac_local_dirs=[tmp_path])
    import pickle

    (tmp_path / "evil.skops").write_bytes(pickle.dumps({"format": "terracube-ml-model/1"}))
    nodes = {"m": {"process_id": "load_ml_model", "arguments": {"id": str(tmp_path / "evil.skops")}}}
    with pytest.raises(OpenEOError) as error:
        run(nodes, "m", settings, catalog)
    assert error.value.status == 400 and "not a model saved by save_ml_model" in error.value.message


@pytest.mark.parametrize(
    "change, message",
    [
        ({"max_variables": 9}, "between 1 and the number of predictors (4)"),
        ({"max_variables": "half"}, "one of all, log2"),
        ({"num_trees": 0}, "at least 1"),
        ({"target": {"type": "FeatureCollection", "features": []}}, "has 0 features but 'predictors' has"),
    ],
)
def test_user_errors_in_training_are_openeo_errors(sites, settings, catalog, change, message):
    collection, _ = sites
    nodes = graph_nodes(collection)
    nodes["fit"]["arguments"].update(change)
    with pytest.raises(OpenEOError) as error:
        run(nodes, "fit", settings, catalog)
    assert error.value.status == 400 and message in error.value.message


def test_a_target_without_labels_is_an_openeo_error(sites, settings, catalog):
    collection, _ = sites
    unlabelled = {"type": "FeatureCollection", "features": [{**f, "properties": {"a": 1, "b": 2}} for f in collection["features"]]}
    nodes = graph_nodes(unlabelled)
    nodes["fit"]["arguments"]["target"] = unlabelled
    with pytest.raises(OpenEOError) as error:
        run(nodes, "fit", settings, catalog)
    assert "needs a property 'target'" in error.value.message


def test_predicting_on_other_bands_names_the_missing_ones(sites, settings, catalog):
    collection, _ = sites
    nodes = graph_nodes(collection)
    nodes["predict"]["arguments"]["data"] = {"from_node": "only"}
    nodes["only"] = {"process_id": "filter_bands", "arguments": {"data": {"from_node": "time"}, "bands": ["B04", "B08"]}}
    with pytest.raises(OpenEOError) as error:
        run(nodes, "predict", settings, catalog)
    assert error.value.status == 400 and "lacks ['B02', 'B03']" in error.value.message
