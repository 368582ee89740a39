"""The official suite's tests that do not pass against terracube, each with its reason, in one place.

Every other test must pass or be skipped by the suite itself; ``run_suite.py`` reports anything
else as unexpected, and so does ``test_official_suite.py``. docs/compliance.md explains each reason.
An expected failure of the general part that starts to pass is reported too, so that list never outlives its cause.
"""

from __future__ import annotations

import re

from terracube.conformance.rejected import REJECTED

SPEC_ONE_OF = (
    "the API document's process_json_schema is a oneOf of three overlapping branches (Generic, process graph, "
    "data cube): every parameter or return schema matches two of them, so no process document can pass "
    "(Open-EO/openeo-api#600); and the suite validates this OpenAPI 3.0 document with 3.1 rules, which "
    "ignore `nullable`, so null example arguments fail too; checked: with that oneOf read as anyOf and 3.0 rules, "
    "these documents validate without an error (corrected_spec_check.py)"
)
DOUBLE_SLASH = (
    "the suite's job helpers join URLs as f'{base_url}/jobs/...' while base_url (from /.well-known/openeo) "
    "ends in '/': they start and read jobs at //jobs/..., which this server does not merge into /jobs/..., "
    "so the job never starts and the helper reads an error without 'status' (KeyError)"
)
NOT_JSON = "the case holds NaN or ±Infinity, which JSON cannot carry: the suite refuses to send it (its README says such cases are skipped)"
NOT_JSON_RESULT = "the expected result is NaN or ±Infinity, which JSON cannot carry; terracube answers null, as JSON asks"
NULL_CALLBACK = (
    "the suite's http runner does not encode callbacks (its ProcessTestRunner.encode_process_graph returns None), "
    "so the callback goes out as null, which terracube refuses for a required callback"
)
NO_ASSET = "the case refers to an asset (tests/assets/xyb-minimal-float.json5) that the specification does not ship"
CUBE_RESULT = (
    "the case expects a data cube in the suite's JSON encoding; the http runner decodes no data cubes (its cube "
    "arguments are skipped as 'datacubes not implemented yet'), and terracube's JSON of the empty cube is null"
)
OFFLINE_WORKFLOW = "the workflow asks for Sentinel-2 over Bolzano (South Tyrol) in 2022; the offline sample archive holds the Ahr valley, June to August 2021"

# general: test name -> (pattern the failure message must match, reason)
GENERAL: dict[str, tuple[str, str]] = {
    **{name: (r"Message: ", SPEC_ONE_OF) for name in (
        "test_GET_processes", "test_GET_file_formats", "test_GET_process_graphs", "test_GET_process_graphs_process_id")},
    "test_GET_service_types": (
        r"not implemented|is REQUIRED", "no secondary web services (yet): GET /service_types is 404; the API makes them optional and "
        "the suite's own message says 'only an error if it is REQUIRED'"),
    "test_PUT_process_graphs_process_id": (
        r"code\. 400", "the suite stores processes under str(uuid4()), with hyphens; the API's process_id pattern is "
        "^\\w+$, so terracube answers 400 ProcessGraphIdInvalid"),
    "test_POST_result": (
        r"code\. 200", "the suite expects 201 from POST /result; the API answers 200 with the result"),
    "test_empty_PATCH_jobs_job_id": (
        r"code\. 400", "the suite expects 204 for PATCH /jobs/{id} with {}; the API's errors.json has NoDataForUpdate "
        "(400) for a PATCH without data, which terracube answers"),
    **{name: (r"KeyError: 'status'", DOUBLE_SLASH) for name in (
        "test_GET_jobs_job_id_results", "test_DELETE_jobs_job_id_results", "test_GET_jobs_job_id_estimate",
        "test_GET_jobs_job_id_logs")},
}

COLLECTIONS = (r"schemas\.stacspec\.org|ConnectionError|NameResolution|Max retries",
               "stac-validator fetches the STAC JSON schemas from schemas.stacspec.org; the run has no internet")

# processing: process#index cases terracube fails on purpose besides the rejected ones
DEVIATIONS = {
    "normalized_difference#3": "x is null; the spec's schema for x is number only, so terracube refuses it "
    "(ProcessParameterInvalid), as docs/conformance.md counts it",
}


def expected_reason(row) -> str | None:
    """Why ``row`` (a run_suite.Outcome that did not pass) is expected, or None when it is not."""
    if row.outcome == "skipped":
        return row.message or "skipped by the suite"
    if row.part == "general" and row.name in GENERAL:
        pattern, reason = GENERAL[row.name]
        if reason == SPEC_ONE_OF and row.corrected_spec != "clean":
            return None  # terracube's own documents must validate once the document's defect is corrected
        return reason if re.search(pattern, row.message) else None
    if row.part == "collections":
        pattern, reason = COLLECTIONS
        return reason if re.search(pattern, row.message) else None
    if row.part == "workflows":
        return OFFLINE_WORKFLOW if "NoDataAvailable" in row.message or "didn't finish successfully" in row.message else None
    if row.part == "processing":
        if row.non_json == "arguments" and "don't support" in row.message:
            return NOT_JSON
        if row.non_json == "returns" and re.search(r"got None|instead of NaN", row.message):
            return NOT_JSON_RESULT
        if row.callback and "got null" in row.message:
            return NULL_CALLBACK
        if "Failed to load external reference" in row.message and "xyb-minimal-float" in row.message:
            return NO_ASSET
        if row.case == "create_data_cube#0" and "Expected a dict but got" in row.message:
            return CUBE_RESULT
        if row.case in REJECTED:
            return f"judged wrong (docs/conformance.md): {REJECTED[row.case]}"
        if row.case in DEVIATIONS:
            return DEVIATIONS[row.case]
    return None
