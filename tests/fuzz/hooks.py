"""Schemathesis hooks for tests/fuzz (``hooks`` in schemathesis.toml): the one correction the API document needs.

The API document's ``process_json_schema`` is a ``oneOf`` of overlapping branches (Generic,
process graph, data cube): every parameter or return schema, even ``{"type": "number"}``, matches
two of them, so no process description with a parameter can pass (Open-EO/openeo-api#600; the
official suite fails on it too, docs/compliance.md). Checking responses against the fuzzer's copy
of the document with that ``oneOf`` read as ``anyOf`` is the same correction as
tests/compliance/corrected_spec_check.py makes; every other schema is checked as served.
"""

from __future__ import annotations

import schemathesis


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    schema = raw_schema["components"]["schemas"]["process_json_schema"]
    assert "oneOf" in schema, "the API document changed: revisit tests/fuzz/hooks.py"
    schema["anyOf"] = schema.pop("oneOf")
