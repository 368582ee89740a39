"""Validate terracube's process documents against the API document with its known defect corrected.

Run in the suite's Python by run_suite.py, against the live server: ``python corrected_spec_check.py
SPEC URL OUT``. The suite's checks of ``/processes``, ``/file_formats`` and ``/process_graphs`` fail
on the API document itself (``process_json_schema``'s ``oneOf``, Open-EO/openeo-api#600, and 3.1
rules on a 3.0 document). This check reads that ``oneOf`` as ``anyOf`` and uses OpenAPI 3.0 rules,
as the document declares, and writes every remaining error to OUT (JSON): an empty list is the
proof that the suite's failures there are the document's, not terracube's.
"""

from __future__ import annotations

import json
import sys
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
    errors = []
    try:
        for path, auth in (("processes", {}), ("file_formats", {}), ("process_graphs", headers),
                           ("process_graphs/corrected_spec_check", headers)):
            response = requests.get(base + path, headers=auth, timeout=60)
            try:
                validate_response(RequestsOpenAPIRequest(requests.Request("GET", base + path, headers=auth)),
                                  RequestsOpenAPIResponse(response), spec=spec, cls=V30ResponseValidator)
            except Exception as error:  # openapi-core's validation errors, as the suite reads them
                errors.append(f"{path}: {check_test_results(error)}")
    finally:
        requests.delete(base + "process_graphs/corrected_spec_check", headers=headers, timeout=30)
    Path(out).write_text(json.dumps(errors))


if __name__ == "__main__":
    main(*sys.argv[1:4])
