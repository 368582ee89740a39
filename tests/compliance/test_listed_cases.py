"""How a run of the official suite is judged (``run_suite.classify``) and how the suite's plugin picks the listed cases.

No suite here: JUnit rows as ``run_suite.outcomes`` reads them, and the entries of ``expected.py``.
What must hold so that the list of skipped cases cannot rot: an entry that selects nothing, a
listed case that passes or fails for another reason in the audit, and any failure are unexpected.
"""

from __future__ import annotations

from tests.compliance.expected import KNOWN, by_key, known_for
from tests.compliance.run_suite import Outcome, SuiteRun, classify
from tests.compliance.suite_plugin import listed_entry

POST_RESULT = by_key("post-result-201")
NAN = by_key("nan-arguments")


def skipped(part: str, name: str, key: str, case: str | None = None) -> Outcome:
    return Outcome(part, name, "skipped", f"terracube: {by_key(key).reason}", case=case, known=key)


def audited(part: str, name: str, key: str, outcome: str, message: str, case: str | None = None) -> Outcome:
    return Outcome(part, name, outcome, message, case=case, known=key, audit=True)


def test_a_clean_run_has_passes_and_reasoned_skips_only():
    rows = [
        Outcome("general", "test_GET_me", "passed", ""),
        skipped("general", "test_POST_result", "post-result-201"),
        Outcome("processing", "test_process[x]", "skipped", "datacubes not implemented yet", case="apply#2"),
        audited("general", "test_POST_result", "post-result-201", "failed", "Unexpected status code. 200"),
    ]
    ours, suites, unexpected = classify(SuiteRun(rows, [POST_RESULT], []))
    assert unexpected == []
    assert [(r.name, reason) for r, reason in ours] == [("test_POST_result", POST_RESULT.reason)]
    assert [reason for _, reason in suites] == ["datacubes not implemented yet"]


def test_a_failure_nobody_listed_is_unexpected():
    row = Outcome("general", "test_GET_me", "failed", "KeyError")
    assert classify(SuiteRun([row], [], []))[2] == [row]


def test_a_listed_case_that_passes_in_the_audit_is_unexpected():
    rows = [skipped("general", "test_POST_result", "post-result-201"),
            audited("general", "test_POST_result", "post-result-201", "passed", "")]
    unexpected = classify(SuiteRun(rows, [POST_RESULT], []))[2]
    assert len(unexpected) == 1 and "remove it from the list" in unexpected[0].message


def test_a_listed_case_that_fails_for_another_reason_is_unexpected():
    rows = [skipped("general", "test_POST_result", "post-result-201"),
            audited("general", "test_POST_result", "post-result-201", "failed", "Unexpected status code. 500")]
    unexpected = classify(SuiteRun(rows, [POST_RESULT], []))[2]
    assert len(unexpected) == 1 and "another reason" in unexpected[0].message


def test_a_listed_name_that_selects_no_test_is_unexpected():
    entry = by_key("spec-one-of")  # four names, one of them missing from the run
    rows = [skipped("general", name, "spec-one-of") for name in entry.names[:3]]
    unexpected = classify(SuiteRun(rows, [entry], []))[2]
    assert [(r.outcome, r.name) for r in unexpected] == [("unmatched", "spec-one-of")]
    assert entry.names[3] in unexpected[0].message


def test_a_suite_skip_without_a_reason_is_unexpected():
    row = Outcome("processing", "test_process[x]", "skipped", "")
    assert classify(SuiteRun([row], [], []))[2] == [row]


def test_the_corrected_document_check_gates_the_document_reasons():
    assert {k.key for k in known_for("general", corrected_spec_clean=False)}.isdisjoint({"spec-one-of", "nullable-3.1"})
    unexpected = classify(SuiteRun([], [], ["processes: Message: x"]))[2]
    assert [r.name for r in unexpected] == ["corrected_spec_check"]


def test_the_plugin_leaves_the_suites_own_skips_to_the_suite():
    entries = [k.as_plugin_entry() for k in known_for("processing")]
    assert listed_entry(entries, "t", {"case": "max#3", "non_json": "arguments"})["key"] == NAN.key
    assert listed_entry(entries, "t", {"case": "apply#0", "non_json": "returns", "runner_skips": "yes"}) is None
    assert listed_entry(entries, "t", {"case": "array_apply#0", "callback": "yes"})["key"] == "null-callback"
    assert listed_entry(entries, "t", {"case": "add#0"}) is None


def test_every_reason_is_written_and_every_key_unique():
    assert len({k.key for k in KNOWN}) == len(KNOWN)
    assert all(len(k.reason) > 40 and k.failure for k in KNOWN)
