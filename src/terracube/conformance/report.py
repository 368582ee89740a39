"""The record of a conformance run (``docs/conformance.json``) and its page (``docs/conformance.md``).

The record keeps, per target, only what did not pass (with the reason), and per process how many
cases the suite had and whether the process is stable: small enough to commit, complete enough to
redraw every table. CI's gate reads ``gate.stable_pass_rate`` from it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from terracube.conformance.rejected import DEVIATIONS, REJECTED
from terracube.conformance.run import FAILED, PASSED, SKIPPED, Outcome, Results

GATE_TARGET = "terracube"
TARGET_TITLES = {
    "terracube": "terracube, in process",
    "terracube-http": "terracube over HTTP",
    "openeo-processes-dask": "openeo-processes-dask (reference)",
}


def record_from(results: Results) -> dict:
    cases: dict[str, dict] = {}
    for o in results.outcomes:
        entry = cases.setdefault(o.process_id, {"stable": o.stable, "cases": 0})
        entry["cases"] += 1
    return {
        "seconds": round(results.seconds, 1),
        "processes": cases,
        "failed": {o.key: o.reason for o in results.outcomes if o.status == FAILED},
        "skipped": {o.key: o.reason for o in results.outcomes if o.status == SKIPPED},
        "would_pass": {o.key: o.would_pass for o in results.outcomes if o.status != PASSED and o.would_pass},
    }


def results_from(target: str, record: dict) -> Results:
    outcomes = []
    for process_id, entry in sorted(record["processes"].items()):
        for index in range(entry["cases"]):
            key = f"{process_id}#{index}"
            status, reason = PASSED, ""
            if key in record["failed"]:
                status, reason = FAILED, record["failed"][key]
            elif key in record["skipped"]:
                status, reason = SKIPPED, record["skipped"][key]
            would_pass = record.get("would_pass", {}).get(key, "")
            outcomes.append(Outcome(process_id, index, entry["stable"], status, reason, key in REJECTED, would_pass))
    return Results(target, outcomes, record.get("seconds", 0.0))


def load_record(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"targets": {}}


def update_record(path: Path, results: Results, suite_version: str = "") -> dict:
    record = load_record(path)
    record.setdefault("targets", {})[results.target] = record_from(results)
    record["updated"] = time.strftime("%Y-%m-%d")
    if suite_version:
        record["suite"] = suite_version
    if results.target == GATE_TARGET:
        record["gate"] = {"target": GATE_TARGET, "stable_pass_rate": round(results.rate(stable=True), 1)}
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return record


# --- the page -------------------------------------------------------------------------------


def _pct(results: Results, stable: bool, rejected: bool | None) -> str:
    selected = results.select(stable, rejected)
    passed = sum(o.status == PASSED for o in selected)
    return f"{passed}/{len(selected)} ({100.0 * passed / len(selected):.1f} %)" if selected else "-"


def _pct_also(results: Results, also: tuple[str, ...]) -> str:
    selected = results.select(stable=True)
    passed = sum(o.status == PASSED or (o.would_pass in also and o.would_pass != "") for o in selected)
    return f"{passed}/{len(selected)} ({100.0 * passed / len(selected):.1f} %)" if selected else "-"


def _counts(results: Results, process_id: str) -> str:
    selected = results.select(process_id=process_id)
    p = sum(o.status == PASSED for o in selected)
    f = sum(o.status == FAILED for o in selected)
    s = sum(o.status == SKIPPED for o in selected)
    return f"{p} / {f} / {s}"


def _notes(all_results: list[Results], process_id: str) -> str:
    first = all_results[0]
    notes = []
    for o in first.select(process_id=process_id):
        if o.key in REJECTED:
            notes.append(f"#{o.index} rejected")
        elif o.key in DEVIATIONS:
            notes.append(f"#{o.index} deviation")
        elif o.status != PASSED:
            notes.append(f"#{o.index} {o.status}")
    skipped = {o.reason for o in first.select(process_id=process_id) if o.status == SKIPPED}
    if skipped and len(skipped) == 1 and len(notes) == len(first.select(process_id=process_id)):
        return skipped.pop()
    return ", ".join(notes)


def _table(all_results: list[Results], stable: bool) -> list[str]:
    heads = " | ".join(TARGET_TITLES.get(r.target, r.target) for r in all_results)
    lines = [f"| process | cases | {heads} | notes ({all_results[0].target}) |", "|---|---:|" + "---|" * len(all_results) + "---|"]
    processes = sorted({o.process_id for o in all_results[0].outcomes if o.stable == stable})
    for process_id in processes:
        cases = len(all_results[0].select(process_id=process_id))
        cells = " | ".join(_counts(r, process_id) for r in all_results)
        lines.append(f"| {process_id} | {cases} | {cells} | {_notes(all_results, process_id)} |")
    return lines


def render(record: dict) -> str:
    order = [t for t in ("terracube", "terracube-http", "openeo-processes-dask") if t in record.get("targets", {})]
    all_results = [results_from(t, record["targets"][t]) for t in order]
    main = all_results[0]
    stable_cases = len(main.select(stable=True))
    kept = len(main.select(stable=True, rejected=False))
    lines = [
        "# Process conformance",
        "",
        "<!-- Generated by `python -m terracube.conformance report` from docs/conformance.json; do not edit by hand. -->",
        "",
    ]
    headline = f"**{main.rate(True):.1f} % of all {stable_cases} stable official test cases pass in process** "
    headline += f"({main.rate(True, False):.1f} % of the {kept} cases not judged wrong)"
    for other in all_results[1:]:
        headline += f"; {TARGET_TITLES.get(other.target, other.target)}: {other.rate(True):.1f} % ({other.rate(True, False):.1f} %)"
    lines += [headline + ".", ""]
    gate = record.get("gate", {}).get("stable_pass_rate")
    lines += [
        f"CI gate: `tests/processes/test_conformance.py` runs the in-process target on every build and fails when the "
        f"stable pass rate drops below **{gate} %**, the figure recorded in `docs/conformance.json` (suite of {record.get('updated', '')}).",
        "",
        "## Summary",
        "",
        "| cases | " + " | ".join(TARGET_TITLES.get(r.target, r.target) for r in all_results) + " |",
        "|---|" + "---|" * len(all_results),
    ]
    for title, stable, rejected in (
        ("stable, all", True, None),
        ("stable, not judged wrong", True, False),
        ("proposals, all", False, None),
        ("proposals, not judged wrong", False, False),
    ):
        lines.append(f"| {title} | " + " | ".join(_pct(r, stable, rejected) for r in all_results) + " |")
    lines += [
        "| stable, all, accepting 1/0 for true/false | " + " | ".join(_pct_also(r, ("booleans",)) for r in all_results) + " |",
        "| stable, all, also accepting any error for the expected one | "
        + " | ".join(_pct_also(r, ("booleans", "any error")) for r in all_results) + " |",
    ]
    lines += ["", "The last two rows relax the comparison, for the reference's sake: openeo-processes-dask answers many "
              "logical results as 1.0/0.0 and raises Python exceptions where the spec names one.", ""]
    lines += ["Run time: " + ", ".join(f"{TARGET_TITLES.get(r.target, r.target)} {r.seconds:.0f} s" for r in all_results) + ".", ""]
    lines += [HOW, ""]
    lines += ["## Stable processes", "", "Cells: passed / failed / skipped.", ""] + _table(all_results, True)
    lines += ["", "## Proposals", "", "Cells: passed / failed / skipped.", ""] + _table(all_results, False)
    lines += ["", "## Cases judged wrong", "", "Each contradicts its process's spec or is broken; terracube follows the spec. "
              "They are run and counted in the 'all' figures, and left out of the 'not judged wrong' ones.", "",
              "| case | why |", "|---|---|"]
    lines += [f"| {key} | {why} |" for key, why in sorted(REJECTED.items(), key=lambda kv: _key_order(kv[0]))]
    lines += ["", "## Deliberate deviations", "", "Cases that are right by the spec, where terracube chose otherwise; "
              "they count as failures in every figure.", "", "| case | why |", "|---|---|"]
    lines += [f"| {key} | {why} |" for key, why in sorted(DEVIATIONS.items(), key=lambda kv: _key_order(kv[0]))]
    for results in all_results:
        lines += ["", f"## Not passed: {TARGET_TITLES.get(results.target, results.target)}", ""]
        lines += _details(results)
    return "\n".join(lines) + "\n"


def _key_order(key: str) -> tuple[str, int]:
    process_id, index = key.split("#")
    return process_id, int(index)


def _details(results: Results) -> list[str]:
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    for o in results.outcomes:
        if o.status != PASSED:
            grouped[o.process_id].append(o)
    if not grouped:
        return ["Everything passed."]
    lines = ["<details><summary>" + f"{sum(len(v) for v in grouped.values())} cases" + "</summary>", ""]
    for process_id in sorted(grouped):
        outcomes = grouped[process_id]
        reasons = {o.reason for o in outcomes}
        if len(outcomes) > 1 and len(reasons) == 1 and all(o.status == SKIPPED for o in outcomes):
            lines.append(f"- `{process_id}` (all {len(outcomes)}): skipped, {reasons.pop()}")
            continue
        for o in outcomes:
            mark = " (judged wrong)" if o.rejected else " (deviation)" if o.key in DEVIATIONS else ""
            reason = o.reason.replace("|", "\\|").replace("<", "&lt;")
            lines.append(f"- `{o.key}`{mark}: {o.status}, {reason}")
    lines += ["", "</details>"]
    return lines


HOW = """## How this is measured

`python -m terracube.conformance` (the package `terracube.conformance`) reads every JSON5 file in the
`tests/` folder of the openeo-processes checkout (`TERRACUBE_OPENEO_PROCESSES`, else
`shared/openeo-processes` next to the repository), so new official cases count without code changes.
A process is *stable* when its spec is at the top of that repository, a *proposal* when it is in
`proposals/`. Each case is one process called with the case's arguments:

- **terracube, in process**: a one-node process graph evaluated by terracube's engine; datacube
  arguments are small dask-backed cubes with the case's labels, CRS and dimension types, labelled
  arrays are one-dimensional DataArrays, child process graphs are real callbacks.
- **terracube over HTTP**: the same node POSTed to `/result` of a live server; the JSON answer (or
  the openEO error, which counts as a throw) is compared. Datacube arguments are served to the
  server as netCDF files and read with `load_url`; a case that returns a datacube asks for it as
  netCDF (`save_result`) and reads the file back as `load_url` does, so labels, dimension order,
  values and CRS are compared; NaN and infinities that JSON can't carry are checked with a second,
  probing request (`is_nan`, `is_infinite`).
- **openeo-processes-dask**: the reference xarray implementation, through openeo-pg-parser-networkx
  as its documentation shows, with the same decoded arguments.

A case passes when the result equals `returns` (numbers to 10 decimals or the case's `delta`, NaN
equals NaN, no-data is null, and NaN inside cubes and labelled arrays; date-times as instants;
booleans only as booleans) or when an expected exception is raised with the expected code (`throws:
true` accepts any error). A case is skipped when the target lacks the process (or one the case
declares as `required`) or the case refers to an asset the suite does not ship; skipped cases count
as not passed."""
