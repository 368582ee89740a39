"""The official suite's tests that terracube skips, each with its written reason, in one place.

The suite's plugin (``suite_plugin.py``) turns every case listed here into a skip carrying its
reason before the test runs, so the suite's report holds passes and reasoned skips only. Anything
else that does not pass is unexpected (``run_suite.py``, ``test_official_suite.py``). So that the
list cannot outlive its causes:

- every test name and case label listed here must match a test the suite collected;
- an audit run (``run_suite.py`` does it after the normal run) runs the listed cases anyway: each
  must fail, with a message matching its entry's ``failure`` pattern. A listed case that passes
  (or fails for another reason) is unexpected, and its entry must go.

Every reason is one of: a bug of the suite or of the specification (with a pointer), data the
offline archive cannot hold, or the internet, which the run does not have. docs/compliance.md
explains each one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from terracube.conformance.rejected import REJECTED


@dataclass(frozen=True)
class Known:
    """A listed case: which tests of a part it selects, why terracube skips them, and how they fail when run."""

    key: str
    part: str
    reason: str
    failure: str  # a regex the failure message must match when the audit runs the case
    names: tuple[str, ...] = ()  # the suite's test names (general, collections), or ("*",): every test of the part
    cases: tuple[str, ...] = ()  # processing: process#index labels (suite_plugin.py)
    non_json: str | None = None  # processing: every case whose "arguments" or "returns" hold NaN or ±Infinity

    def as_plugin_entry(self) -> dict:
        return {"key": self.key, "reason": self.reason, "names": list(self.names), "cases": list(self.cases), "non_json": self.non_json}


SPEC_ONE_OF = (
    "specification bug: the API document's process_json_schema is a oneOf of three overlapping branches (Generic, "
    "process graph, data cube), so every parameter or return schema matches two of them and no process document can "
    "pass (Open-EO/openeo-api#600); and the suite validates this OpenAPI 3.0 document with 3.1 rules, which ignore "
    "`nullable`. Checked at every run: with that oneOf read as anyOf and 3.0 rules, terracube's documents validate "
    "without an error (tests/compliance/corrected_spec_check.py)"
)

# Cases of terracube.conformance.rejected that this suite runs (the others it skips itself or
# refuses to send), with how terracube answers them.
JUDGED_WRONG = {
    "count#4": r"refers to parameter 'element'", "count#5": r"refers to parameter 'element'",
    "array_append#0": r"Differences", "array_filter#0": r"required argument 'condition' is missing",
    "array_filter#2": r"required argument 'condition' is missing", "any#8": r"got None", "all#8": r"got None",
}

NULLABLE = (
    "suite bug: it validates responses with OpenAPI 3.1 rules (V31ResponseValidator, openeo_test_suite/lib/"
    "compliance_util.py) while the API document declares `openapi: 3.0.2`; 3.1 ignores `nullable`, so the document's "
    "own nullable fields fail when null: a finished job's properties.datetime (null beside start_datetime and "
    "end_datetime, as the API recommends for a time range) and the estimate's downloads_included (null: unlimited "
    "downloads, the API's default). Checked at every run: under 3.0 rules these documents validate without an error "
    "(tests/compliance/corrected_spec_check.py)"
)
# Entries that hold only while corrected_spec_check.py finds no error in terracube's own documents.
CHECKED = {"spec-one-of", "nullable-3.1"}

KNOWN: tuple[Known, ...] = (
    # --- general API compliance ---------------------------------------------------------------
    Known("spec-one-of", "general", SPEC_ONE_OF, r"Message: ", names=(
        "test_GET_processes", "test_GET_file_formats", "test_GET_service_types", "test_GET_process_graphs",
        "test_GET_process_graphs_process_id")),
    Known("nullable-3.1", "general", NULLABLE, r"Message: ", names=("test_GET_jobs_job_id_results", "test_GET_jobs_job_id_estimate")),
    Known("uuid-process-id", "general",
          "suite bug: it stores a process under str(uuid4()), with hyphens, while the API's process_graph_id is a "
          "process_id, pattern ^\\w+$ (openapi.yaml); terracube answers 400 ProcessGraphIdInvalid. The suite's other "
          "process-graph tests use uuid4().hex and pass",
          r"code\. 400", names=("test_PUT_process_graphs_process_id",)),
    Known("post-result-201", "general",
          "suite bug: it expects 201 from POST /result; the API (openapi.yaml, compute-result) answers 200 with the result",
          r"code\. 200", names=("test_POST_result",)),
    Known("empty-patch-204", "general",
          "suite bug: it expects 204 for PATCH /jobs/{id} with the body {}; the API's errors.json defines "
          "NoDataForUpdate (400) 'for PATCH requests: no valid data specified at all', which terracube answers",
          r"code\. 400", names=("test_empty_PATCH_jobs_job_id",)),
    # --- collections --------------------------------------------------------------------------
    Known("stac-schemas-online", "collections",
          "internet needed: stac-validator fetches the STAC JSON schemas from schemas.stacspec.org, and the run has "
          "no internet (test_valid_collection_id, which needs none, passes)",
          r"schemas\.stacspec\.org|ConnectionError|NameResolution|Max retries",
          names=("test_get_collections", "test_get_collections_collection_id[SENTINEL2_L2A]")),
    # --- processing (--runner=http) -----------------------------------------------------------
    # Listed cases before the NaN rules: a case is skipped for the first entry that selects it.
    Known("null-callback", "processing",
          "suite bug: its http runner does not encode callbacks (ProcessTestRunner.encode_process_graph returns None, "
          "openeo_test_suite/lib/process_runner/base.py), so the callback goes out as null, which terracube refuses "
          "for a required callback", r"got null", cases=("array_apply#0", "array_apply#2", "array_apply#4")),
    Known("cube-result", "processing",
          "suite limitation: the case expects a data cube in the suite's JSON encoding, and the http runner decodes no "
          "data cubes (it skips cube arguments itself: 'datacubes not implemented yet'); terracube's JSON of the empty "
          "cube is null", r"Expected a dict but got", cases=("create_data_cube#0",)),
    Known("missing-asset", "processing",
          "specification bug: the case refers to tests/assets/xyb-minimal-float.json5, which the specification "
          "(openeo-processes) does not ship", r"Failed to load external reference.*xyb-minimal-float", cases=("mask#1",)),
    Known("null-x", "processing",
          "case contradicts its process's spec: x is null, while normalized_difference's schema for x is a number "
          "only, so terracube refuses it (ProcessParameterInvalid); docs/conformance.md counts it so",
          r"argument 'x' must be of type number, got null", cases=("normalized_difference#3",)),
    *(Known(f"judged-wrong-{case}", "processing",
            f"case contradicts its process's spec (docs/conformance.md, 'Cases judged wrong'): {REJECTED[case]}",
            failure, cases=(case,))
      for case, failure in JUDGED_WRONG.items()),
    Known("nan-arguments", "processing",
          "not JSON: the case's arguments hold NaN or ±Infinity, which JSON cannot carry; the suite's http runner "
          "refuses to send them (ValueError: HTTP JSON APIs don't support ...; its README says such cases are skipped)",
          r"don't support", non_json="arguments"),
    Known("nan-returns", "processing",
          "not JSON: the expected result is NaN or ±Infinity, which JSON cannot carry; terracube answers null, as "
          "JSON asks (RFC 8259 section 6)", r"got None|instead of NaN", non_json="returns"),
    # --- workflows ----------------------------------------------------------------------------
    Known("offline-bolzano", "workflows",
          "data the offline archive cannot hold: every workflow asks for Sentinel-2 over Bolzano (South Tyrol) in "
          "June 2022, fixed in the suite; the sample archive holds the Ahr valley, June to August 2021 "
          "(load_collection answers 400 NoDataAvailable), and the suite's other way, a STAC URL, needs the internet",
          r"NoDataAvailable|didn't finish successfully", names=("*",)),
)


def known_for(part: str, corrected_spec_clean: bool = True) -> list[Known]:
    """The listed cases of a part. The API document's defects excuse nothing once terracube's own documents fail the corrected check."""
    return [k for k in KNOWN if k.part == part and (corrected_spec_clean or k.key not in CHECKED)]


def by_key(key: str) -> Known | None:
    return next((k for k in KNOWN if k.key == key), None)


def fails_as_listed(known: Known, message: str) -> bool:
    return re.search(known.failure, message) is not None
