"""A pytest plugin loaded into the official suite's own run (its Python, not terracube's).

It changes no outcome. It labels each individual process test with the case it runs, as
``process#index`` (the case's position in the specification's ``tests/<process>.json5``, the
label docs/conformance.md and ``terracube.conformance.rejected`` use), and says whether the case's
arguments or expected result hold NaN or ±Infinity, which JSON cannot carry, and whether
they hold a callback (``process_graph``). The labels go into
the JUnit XML as properties, where ``run_suite.py`` reads them.
"""

from __future__ import annotations

import math

import pytest


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _has_callback(value) -> bool:
    if isinstance(value, dict):
        return "process_graph" in value or any(_has_callback(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_callback(v) for v in value)
    return False


def _case_label(process_id: str, example: dict) -> str | None:
    from openeo_test_suite.lib.process_selection import get_selected_processes

    for process in get_selected_processes():
        if process.process_id == process_id:
            for index, case in enumerate(process.tests):
                if case is example or case == example:
                    return f"{process_id}#{index}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "process_id" in params and "example" in params:
        example = params["example"]
        label = _case_label(params["process_id"], example)
        if label:
            item.user_properties.append(("case", label))
        if _has_callback(example.get("arguments")):
            item.user_properties.append(("callback", "yes"))
        if _non_finite(example.get("arguments")):
            item.user_properties.append(("non_json", "arguments"))
        elif _non_finite(example.get("returns")):
            item.user_properties.append(("non_json", "returns"))
