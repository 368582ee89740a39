"""Every implemented process against the official openEO test cases (openeo-processes/tests/*.json5).

Each case calls the function straight from ``IMPLEMENTATIONS`` with the case's arguments; process
graphs inside arguments become real callbacks evaluated by ``terracube.graph``. Datacube arguments
are small dask-backed cubes with the case's labels and CRS. A few official cases contradict their
own spec or are broken; they are listed in ``KNOWN`` with the reason and run as strict xfails, so a
fixed suite (or a changed implementation) shows up at once. The pass count per process is printed at
the end of the run (see ``conftest.py``).
"""

from __future__ import annotations

import warnings

import pytest

from terracube.graph.evaluate import Evaluator
from terracube.processes.implementations import IMPLEMENTATIONS
from terracube.processes.registry import default_registry

from tests.processes.official import CASES, OFFICIAL, MissingAsset, load_json5, run_case

# Processes that need the outside world (a catalog, a place to write): tested by their own suites.
NEEDS_ENV = {"load_collection", "save_result"}

KNOWN: dict[tuple[str, int], str] = {
    ("apply", 2): "case bug: expected values use blue=165 at [0][3] (xyb-enumerated-bands); the referenced asset has 255 (no-data)",
    ("array_element", 3): "case bug: asks for label 'BO2' (letter O), the array has 'B01'..'B03' (zero), yet expects 5",
    ("count", 4): "case bug: the condition is a bare graph (no 'process_graph') reading parameter 'element'; the spec names it 'x'",
    ("count", 5): "case bug: the condition is a bare graph (no 'process_graph') reading parameter 'element'; the spec names it 'x'",
    ("filter_bbox", 3): "decision (brief): the reprojected box is snapped outward to whole pixels like load_collection "
    "(CDSE's grid); the case keeps only pixel centres inside the reprojected box",
    ("filter_bbox", 4): "decision (brief): the reprojected box is snapped outward to whole pixels like load_collection "
    "(CDSE's grid); the case keeps only pixel centres inside the reprojected box",
    ("lte", 15): "case bug: expects lte(inf, inf) = false, while gte(inf, inf) = true and IEEE 754 says inf <= inf",
    ("product", 10): "case bug: expects NaN for 1 * -inf * 3 * inf, which is -inf (copied from the sum case)",
    ("filter_bands", 2): "decision: an unknown band name is the BandFilterNotFound error (as CDSE), not an empty cube",
    ("filter_bands", 4): "case bug: same arguments as case 3, different expected bands (blue, green)",
    ("mask", 0): "case contradicts spec: expects replacement where the mask is 0; the spec replaces where it is non-zero/true",
    ("mask", 2): "case contradicts spec: expects replacement where the mask is 0 (and also at [2][2], where it is 1)",
    ("reduce_dimension", 1): "case bug: expected values use blue=165 at [0][3] (xyb-enumerated-bands); the referenced asset has 255 (no-data)",
    ("rename_labels", 5): "case bug: 'target' (required) is missing, the labels are given as 'source'",
    ("rename_labels", 7): "case bug: 'target' (required) is missing, the labels are given as 'source'",
}


def _cases():
    if not CASES.is_dir():
        yield pytest.param(None, None, None, marks=pytest.mark.skip(reason=f"official test cases not found at {CASES} (set TERRACUBE_OPENEO_PROCESSES)"), id="no-official-cases")
        return
    for process_id in sorted(IMPLEMENTATIONS):
        path = CASES / f"{process_id}.json5"
        if process_id in NEEDS_ENV or not path.is_file():
            continue
        for index, case in enumerate(load_json5(path)["tests"]):
            marks = []
            if (process_id, index) in KNOWN:
                marks.append(pytest.mark.xfail(reason=KNOWN[process_id, index], strict=True))
            yield pytest.param(process_id, index, case, marks=marks, id=f"{process_id}-{index}")


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(default_registry())


@pytest.mark.parametrize("process_id, index, case", list(_cases()))
def test_official_case(process_id, index, case, evaluator, official_results):
    official_results.setdefault(process_id, [0, 0])[1] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN slices and 0/0, as the cases intend
            run_case(IMPLEMENTATIONS[process_id], case, evaluator)
    except MissingAsset as missing:
        pytest.skip(f"the case refers to {missing}, which the official suite does not ship")
    official_results[process_id][0] += 1


def test_the_official_suite_is_where_ci_expects_it():
    """Not a process test: make a missing checkout visible instead of silently running nothing."""
    if not OFFICIAL.is_dir():
        pytest.skip(f"no openeo-processes checkout at {OFFICIAL}")
    assert (OFFICIAL / "tests" / "README.md").is_file()
