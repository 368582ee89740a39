"""``python -m terracube.conformance``: run the official process test cases, record, report.

    python -m terracube.conformance run                      # terracube in process, print the figure
    python -m terracube.conformance run --target reference   # openeo-processes-dask on the same cases
    python -m terracube.conformance run --target http --serve           # a local server started for the run
    python -m terracube.conformance run --target http --url http://host:8000
    python -m terracube.conformance run --record             # also store the outcome in docs/conformance.json
    python -m terracube.conformance report                   # docs/conformance.md from docs/conformance.json
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from terracube.conformance.report import load_record, render, update_record
from terracube.conformance.run import FAILED, PASSED, Outcome, run_suite
from terracube.conformance.suite import Suite

RECORD = Path("docs/conformance.json")
PAGE = Path("docs/conformance.md")


def make_target(args: argparse.Namespace):
    if args.target == "inprocess":
        from terracube.conformance.inprocess import InProcess

        return InProcess(), None
    if args.target == "reference":
        from terracube.conformance.reference import Reference

        return Reference(), None
    from terracube.conformance.http import HttpTarget, local_server

    if args.url:
        return HttpTarget(args.url), None
    server = local_server()
    return HttpTarget(server.url), server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terracube.conformance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the official cases against a target")
    run.add_argument("--target", choices=["inprocess", "http", "reference"], default="inprocess")
    run.add_argument("--url", help="base URL of a running terracube server (http target)")
    run.add_argument("--serve", action="store_true", help="start a local server for the run (http target, the default without --url)")
    run.add_argument("--processes", help="comma-separated process ids to run (default: all)")
    run.add_argument("--record", nargs="?", const=RECORD, type=Path, help=f"store the outcome (default {RECORD}) and redraw {PAGE}")
    run.add_argument("-v", "--verbose", action="store_true", help="print every case that did not pass")
    report = commands.add_parser("report", help="write the page from the record")
    report.add_argument("--record", type=Path, default=RECORD)
    report.add_argument("--out", type=Path, default=PAGE)
    args = parser.parse_args(argv)

    if args.command == "report":
        args.out.write_text(render(load_record(args.record)), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0

    suite = Suite.find()
    processes = set(args.processes.split(",")) if args.processes else None
    target, server = make_target(args)

    def progress(outcome: Outcome) -> None:
        if args.verbose and outcome.status != PASSED:
            print(f"{outcome.key}: {outcome.status} {outcome.reason}", file=sys.stderr)

    try:
        results = run_suite(target, suite.cases(processes), progress)
    finally:
        if server is not None:
            server.stop()
    statuses = Counter(o.status for o in results.select(stable=True))
    print(
        f"{results.target}: {results.rate(True):.1f} % of {len(results.select(stable=True))} stable cases passed "
        f"({results.rate(True, False):.1f} % of those not judged wrong; {statuses[FAILED]} failed, "
        f"{statuses['skipped']} skipped); proposals {results.rate(False):.1f} %; {results.seconds:.0f} s"
    )
    if args.record and processes is None:
        record = update_record(args.record, results)
        PAGE.parent.mkdir(parents=True, exist_ok=True)
        (args.record.parent / PAGE.name).write_text(render(record), encoding="utf-8")
        print(f"recorded in {args.record} and {args.record.parent / PAGE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
