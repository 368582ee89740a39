"""Run the official cases against a target and record one ``Outcome`` per case.

A target is anything with a ``name``, ``supports(process_id)`` and ``execute(case)``: ``execute``
returns the process's result or raises ``CaseError`` (an openEO error, with its code) or any other
exception (a crash). Whether that matches the case's ``returns``/``throws`` is decided here, the
same way for every target, so the figures of terracube and of the reference are comparable.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Protocol

from terracube.conformance.rejected import REJECTED
from terracube.conformance.suite import Case, MissingAsset
from terracube.conformance.values import Mismatch, compare

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class CaseError(Exception):
    """The target answered with an error: ``code`` is the openEO error code (or exception name)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class Unsupported(Exception):
    """The target can't run this case at all (a process it lacks, an argument it can't be sent)."""


class Target(Protocol):
    name: str

    def supports(self, process_id: str) -> bool: ...

    def execute(self, case: Case) -> Any: ...


@dataclass
class Outcome:
    process_id: str
    index: int
    stable: bool
    status: str  # passed, failed, skipped
    reason: str = ""
    rejected: bool = False
    # For a case that did not pass: "booleans" when it would with 1/0 accepted for true/false,
    # "any error" when it raised an error other than the one expected.
    would_pass: str = ""

    @property
    def key(self) -> str:
        return f"{self.process_id}#{self.index}"


@dataclass
class Results:
    target: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def select(self, stable: bool | None = None, rejected: bool | None = None, process_id: str | None = None) -> list[Outcome]:
        return [
            o for o in self.outcomes
            if (stable is None or o.stable == stable)
            and (rejected is None or o.rejected == rejected)
            and (process_id is None or o.process_id == process_id)
        ]

    def rate(self, stable: bool | None = True, rejected: bool | None = None, also: tuple[str, ...] = ()) -> float:
        """Passed cases as a percentage of the selected cases (skipped ones count as not passed).

        ``also`` counts cases that would pass under relaxed rules (``"booleans"``, ``"any error"``).
        """
        selected = self.select(stable, rejected)
        passed = sum(o.status == PASSED or bool(o.would_pass and o.would_pass in also) for o in selected)
        return 100.0 * passed / len(selected) if selected else 0.0

    def to_dict(self) -> dict:
        return {"target": self.target, "seconds": round(self.seconds, 1), "outcomes": [asdict(o) for o in self.outcomes]}

    @classmethod
    def from_dict(cls, document: dict) -> "Results":
        return cls(document["target"], [Outcome(**o) for o in document["outcomes"]], document.get("seconds", 0.0))


def judge(case: Case, run: Callable[[], Any]) -> tuple[str, str, str]:
    """(status, reason, would_pass) of one case: ``run`` executes it and returns the result."""
    throws = case.throws
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN slices and 0/0, as the cases intend
            actual = run()
    except MissingAsset as missing:
        return SKIPPED, f"refers to {missing}, which the suite does not ship", ""
    except Unsupported as unsupported:
        return SKIPPED, str(unsupported), ""
    except CaseError as error:
        if throws is True or (throws and error.code == throws):
            return PASSED, "", ""
        expected = f"expected the error {throws}" if throws else "expected a result"
        return FAILED, f"{expected}, got the error {_short(str(error))}", "any error" if throws else ""
    except Exception as error:  # noqa: BLE001 - a crash is a failure unless the case expects "some error"
        if throws is True:
            return PASSED, "", ""
        expected = f"expected the error {throws}" if throws else "expected a result"
        return FAILED, f"{expected}, crashed with {type(error).__name__}: {_short(str(error))}", "any error" if throws else ""
    if not case.expects_return:
        return FAILED, f"expected the error {throws}, got a result: {_short(repr(actual))}", ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compare(actual, case.returns, case.delta)
    except Mismatch as mismatch:
        try:
            compare(actual, case.returns, case.delta, booleans_as_numbers=True)
            lenient = "booleans"
        except Mismatch:
            lenient = ""
        return FAILED, _short(str(mismatch), 300), lenient
    return PASSED, "", ""


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def run_case(target: Target, case: Case) -> Outcome:
    rejected = case.key in REJECTED
    missing = [p for p in [case.process_id, *case.required] if not target.supports(p)]
    if missing:
        what = "not implemented" if missing[0] == case.process_id else f"needs {', '.join(missing)}, not implemented"
        return Outcome(case.process_id, case.index, case.stable, SKIPPED, what, rejected)
    status, reason, would_pass = judge(case, lambda: target.execute(case))
    return Outcome(case.process_id, case.index, case.stable, status, reason, rejected, would_pass)


def run_suite(target: Target, cases: Iterable[Case], progress: Callable[[Outcome], None] | None = None) -> Results:
    results = Results(target.name)
    started = time.perf_counter()
    for case in cases:
        outcome = run_case(target, case)
        results.outcomes.append(outcome)
        if progress:
            progress(outcome)
    results.seconds = time.perf_counter() - started
    return results
