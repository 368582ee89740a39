"""A pytest plugin loaded into the official suite's own run (its Python, not terracube's).

It labels each individual process test with the case it runs, as ``process#index`` (the case's
position in the specification's ``tests/<process>.json5``, the label docs/conformance.md and
``terracube.conformance.rejected`` use), and says whether the case's arguments or expected result
hold NaN or ±Infinity, which JSON cannot carry, and whether they hold a callback
(``process_graph``). The labels go into the JUnit XML as properties, where ``run_suite.py`` reads them.

With ``TERRACUBE_SUITE_KNOWN`` naming a JSON file of listed cases (``expected.py``, written by
``run_suite.py``), each test a listed entry selects gets the property ``known`` (the entry's key)
and a skip marker with the entry's written reason, at collection: it never runs. With
``TERRACUBE_SUITE_AUDIT=1`` it is the other way round: only the listed tests are kept, and they
run, so that ``run_suite.py`` can see that each still fails as listed.
"""

from __future__ import annotations

import json
import math
import os

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


def _runner_skips(item: pytest.Item, params: dict) -> bool:
    """True when the suite skips the case itself: its http runner cannot send a data cube or labeled array.

    Asked of the suite's own argument preparation (its test module's ``_prepare_arguments``) with
    its http runner, which raises NotImplementedError for them, as the test would.
    """
    from openeo_test_suite.lib.process_runner.http import Http

    prepare = getattr(getattr(item, "module", None), "_prepare_arguments", None)
    if prepare is None:
        return False
    try:
        prepare(arguments=params["example"].get("arguments", {}), process_id=params["process_id"], connection=Http(None),
                file=params.get("file"))
    except NotImplementedError:
        return True
    except Exception:  # e.g. a missing asset: the test fails on it, no skip
        return False
    return False


def labels(item: pytest.Item) -> dict[str, str]:
    """``case``, ``callback``, ``non_json`` and ``runner_skips`` of an individual process test; nothing for other tests."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    found: dict[str, str] = {}
    if "process_id" in params and "example" in params:
        example = params["example"]
        label = _case_label(params["process_id"], example)
        if label:
            found["case"] = label
        if _has_callback(example.get("arguments")):
            found["callback"] = "yes"
        if _non_finite(example.get("arguments")):
            found["non_json"] = "arguments"
        elif _non_finite(example.get("returns")):
            found["non_json"] = "returns"
        if _runner_skips(item, params):
            found["runner_skips"] = "yes"
    return found


def listed_entry(entries: list[dict], name: str, found: dict[str, str]) -> dict | None:
    """The first listed entry that selects this test (by name, by case label, or by its NaN/±Infinity).

    The NaN rules leave alone the cases the suite skips itself (data cubes, labeled arrays): its
    own reason comes first.
    """
    for entry in entries:
        if "*" in entry["names"] or name in entry["names"] or found.get("case") in entry["cases"]:
            return entry
        if entry["non_json"] and found.get("non_json") == entry["non_json"] and "runner_skips" not in found:
            return entry
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = os.environ.get("TERRACUBE_SUITE_KNOWN")
    entries = json.loads(open(path).read()) if path else []
    audit = os.environ.get("TERRACUBE_SUITE_AUDIT") == "1"
    kept, dropped = [], []
    for item in items:
        found = labels(item)
        item.user_properties.extend(found.items())
        entry = listed_entry(entries, item.name, found)
        if entry is not None:
            item.user_properties.append(("known", entry["key"]))
            if not audit:
                item.add_marker(pytest.mark.skip(reason=f"terracube: {entry['reason']}"))
        (kept if entry is not None or not audit else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
