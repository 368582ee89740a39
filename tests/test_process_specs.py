"""The specs served by /processes are the official ones, and every registered process has one."""

import json
import os
from pathlib import Path

import pytest

from terracube.processes.registry import default_registry, load_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "openeo-processes"
# The machine-learning processes are not in the specification release ../shared holds: they come
# from the openeo-processes repository's `ml` branch, as CDSE serves them (see specs/ABOUT.md).
ML_PROPOSALS = {"fit_class_random_forest", "fit_regr_random_forest", "predict_random_forest", "save_ml_model", "load_ml_model"}


def test_every_registered_process_is_bound_to_its_own_spec():
    registry = default_registry()
    assert len(registry) > 20
    for definition in registry:
        assert definition.spec["id"] == definition.id
        assert "parameters" in definition.spec and "returns" in definition.spec


def test_the_shipped_specs_are_the_official_ones_unchanged():
    if not SHARED.is_dir():
        # CI has the checkout beside the repository: there its absence is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)("../shared/openeo-processes is not beside this checkout")
    registry = default_registry()
    for definition in registry:
        if definition.id in ML_PROPOSALS:
            continue
        official = SHARED / f"{definition.id}.json"
        if not official.exists():
            official = SHARED / "proposals" / f"{definition.id}.json"
        if official.exists():
            assert load_spec(definition.id) == json.loads(official.read_text()), definition.id


def test_the_machine_learning_specs_are_served_unchanged_from_the_ml_branch():
    registry = default_registry()
    for process_id in ML_PROPOSALS:
        spec = registry.get(process_id).spec
        assert spec["experimental"] is True and "machine learning" in spec["categories"]
    assert [p["name"] for p in load_spec("fit_class_random_forest")["parameters"]] == ["predictors", "target", "max_variables", "num_trees", "seed"]
    assert [p["name"] for p in load_spec("predict_random_forest")["parameters"]] == ["data", "model"]


def test_docs_processes_lists_exactly_what_is_implemented():
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "processes.md").read_text(encoding="utf-8")
    table = page.split("| category | processes |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`(\w+)`", table))
    assert listed == {definition.id for definition in default_registry()}, "docs/processes.md is stale"
