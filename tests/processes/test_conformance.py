"""The CI gate: every official openEO process test case, run in process by the conformance runner.

The build fails when the share of stable cases that pass drops below the figure recorded in
docs/conformance.json (and shown in docs/conformance.md). Record a better figure with
``python -m terracube.conformance run --record``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from terracube.conformance.inprocess import InProcess
from terracube.conformance.rejected import DEVIATIONS, REJECTED
from terracube.conformance.run import PASSED, run_suite
from terracube.conformance.suite import Suite, find_checkout

DOCS = Path(__file__).parents[2] / "docs"
RECORD = DOCS / "conformance.json"


@pytest.fixture(scope="module")
def suite() -> Suite:
    root = find_checkout()
    if root is None or not (root / "tests").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI needs the openeo-processes checkout (shared/openeo-processes or TERRACUBE_OPENEO_PROCESSES)")
        pytest.skip("no openeo-processes checkout (set TERRACUBE_OPENEO_PROCESSES)")
    return Suite(root)


@pytest.fixture(scope="module")
def results(suite):
    return run_suite(InProcess(), suite.cases())


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def test_the_stable_pass_rate_does_not_drop_below_the_recorded_figure(results, record):
    recorded = record["gate"]["stable_pass_rate"]
    rate = round(results.rate(stable=True), 1)
    known = set(record["targets"]["terracube"]["failed"]) | set(record["targets"]["terracube"]["skipped"])
    new = [f"{o.key}: {o.status}, {o.reason}" for o in results.outcomes if o.status != PASSED and o.key not in known]
    assert rate >= recorded, f"{rate} % of the stable cases pass, the recorded figure is {recorded} %. Newly not passing:\n" + "\n".join(new)


def test_the_page_shows_the_recorded_figure(record):
    page = (DOCS / "conformance.md").read_text(encoding="utf-8")
    assert f"**{record['gate']['stable_pass_rate']} %**" in page, "docs/conformance.md is stale: python -m terracube.conformance report"


def test_cases_judged_wrong_exist_and_still_fail(results):
    """A listed case that passes was fixed upstream (or the implementation bent to it): update the lists."""
    outcomes = {o.key: o for o in results.outcomes}
    for key in {**REJECTED, **DEVIATIONS}:
        assert key in outcomes, f"{key} is listed as judged wrong or as a deviation, but the suite has no such case"
        assert outcomes[key].status != PASSED, f"{key} passes now: remove it from terracube.conformance.rejected"


def test_every_stable_process_with_cases_is_implemented(results):
    skipped = sorted({o.process_id for o in results.select(stable=True) if o.status != PASSED and o.reason == "not implemented"})
    assert not skipped, f"stable processes with official cases but no implementation: {skipped}"
