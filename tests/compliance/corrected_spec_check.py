"""Validate terracube's process documents against the API document with its known defect corrected.

Run in the suite's Python by run_suite.py, against the live server: ``python corrected_spec_check.py
SPEC URL OUT``. The suite's checks of ``/processes``, ``/file_formats``, ``/service_types`` and ``/process_graphs`` fail
on the API document itself (``process_json_schema``'s ``oneOf``, Open-EO/openeo-api#600), and
those of a finished job's ``/results`` and ``/estimate`` on 3.1 rules applied to a 3.0 document
(3.1 ignores ``nullable``, so the document's own nullable fields fail when null). This check reads
that ``oneOf`` as ``anyOf`` and uses OpenAPI 3.0 rules, as the document declares, and writes every
remaining error to OUT (JSON): an empty list is the proof that the suite's failures there are the
document's, not terracube's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import openeo
import requests
from openapi_core import V30ResponseValidator, validate_response
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from openeo_test_suite.lib.compliance_util import adjust_spec, check_test_results

ONE_OF = """      oneOf:
        - title: Generic
        - $ref: '#/components/schemas/process_graph_json_schema'"""
DOUBLE = {"id": "corrected_spec_check", "parameters": [{"name": "x", "description": "A number.", "schema": {"type": "number"}}],
          "returns": {"description": "Twice x.", "schema": {"type": "number"}},
          "process_graph": {"double": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2}, "result": True}}}


def main(spec_path: str, url: str, out: str) -> None:
    text = Path(spec_path).read_text()
    assert text.count(ONE_OF) == 1, "the API document changed: revisit this check"
    corrected = Path(out).with_suffix(".yaml")
    corrected.write_text(text.replace(ONE_OF, ONE_OF.replace("oneOf", "anyOf")))
    base = url.rstrip("/") + "/"
    spec = adjust_spec(str(corrected), base, url.rstrip("/"))
    connection = openeo.connect(url, auto_validate=False)
    connection.authenticate_oidc()  # client credentials from the environment, as the suite logs in
    headers = {"Authorization": f"Bearer {connection.auth.bearer}"}
    requests.put(base + "process_graphs/corrected_spec_check", json=DOUBLE, headers=headers, timeout=30).raise_for_status()
    job = finished_job(base, headers)
    errors = []
    try:
        for path, auth in (("processes", {}), ("file_formats", {}), ("service_types", {}), ("process_graphs", headers),
                           ("process_graphs/corrected_spec_check", headers),
                           (f"jobs/{job}/results", headers), (f"jobs/{job}/estimate", headers)):
            response = requests.get(base + path, headers=auth, timeout=60)
            try:
                validate_response(RequestsOpenAPIRequest(requests.Request("GET", base + path, headers=auth)),
                                  RequestsOpenAPIResponse(response), spec=spec, cls=V30ResponseValidator)
            except Exception as error:  # openapi-core's validation errors, as the suite reads them
                errors.append(f"{path}: {check_test_results(error)}")
    finally:
        requests.delete(base + "process_graphs/corrected_spec_check", headers=headers, timeout=30)
        requests.delete(base + f"jobs/{job}", headers=headers, timeout=30)
    Path(out).write_text(json.dumps(errors))


def finished_job(base: str, headers: dict) -> str:
    """A job of the suite's own request body (payload_examples/post_jobs), run to its end, as the suite's job tests run it."""
    body = json.loads((Path(__file__).parent / "payload_examples" / "post_jobs" / "post_jobs_1.json").read_text())
    created = requests.post(base + "jobs", json=body, headers=headers, timeout=60)
    created.raise_for_status()
    job = created.headers["OpenEO-Identifier"]
    requests.post(base + f"jobs/{job}/results", headers=headers, timeout=60).raise_for_status()
    deadline = time.monotonic() + 160  # the suite waits as long
    while (status := requests.get(base + f"jobs/{job}", headers=headers, timeout=30).json()["status"]) not in ("finished", "error"):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == "finished", f"the suite's job ended {status!r}"
    return job


if __name__ == "__main__":
    main(*sys.argv[1:4])
