"""Schemathesis hooks for tests/fuzz (``hooks`` in schemathesis.toml): the two corrections the fuzzer needs.

The API document's ``process_json_schema`` is a ``oneOf`` of overlapping branches (Generic,
process graph, data cube): every parameter or return schema, even ``{"type": "number"}``, matches
two of them, so no process description with a parameter can pass (Open-EO/openeo-api#600; the
official suite fails on it too, docs/compliance.md). Checking responses against the fuzzer's copy
of the document with that ``oneOf`` read as ``anyOf`` is the same correction as
tests/compliance/corrected_spec_check.py makes; every other schema is checked as served.

The second is Schemathesis's, not the document's: ``process_argument_value``'s plain-object branch
forbids the keys of the reference objects with ``not: {}`` (``from_node``, ``from_parameter``,
``process_graph``), and Schemathesis cannot generate data under a ``not`` below the document root:
whenever its fuzzing phase reaches that branch for an operation that takes a process graph
(POST /result, /validation, /jobs, /services; which one depends on the run's seed) the run stops
with a "Schema Error". The fuzzer's copy drops those three constraints; the branch then also
admits objects with such keys, which the other branches (the references) describe anyway.
"""

from __future__ import annotations

import schemathesis


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    schema = raw_schema["components"]["schemas"]["process_json_schema"]
    assert "oneOf" in schema, "the API document changed: revisit tests/fuzz/hooks.py"
    schema["anyOf"] = schema.pop("oneOf")
    restricted = raw_schema["components"]["schemas"]["process_argument_value"]["anyOf"][0]["properties"]
    assert all(restricted.get(key) == {"not": {}} for key in ("from_node", "from_parameter", "process_graph")), \
        "the API document changed: revisit tests/fuzz/hooks.py"
    for key in ("from_node", "from_parameter", "process_graph"):
        del restricted[key]
