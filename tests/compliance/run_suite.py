"""Run the official openEO compliance suite (PyPI ``openeo-test-suite``) against a live ``terracube serve``.

    python tests/compliance/run_suite.py [--parts general,collections,metadata,processing,workflows]
                                         [--suite-python PATH] [--keep] [-- SUITE PYTEST OPTIONS]

The suite's wheel reads some inputs from its repository's layout (relative to its package folder),
so a temporary folder is laid out like that repository:

- ``assets/openeo-api`` and ``assets/processes``: links to the API and process specifications
  (default ``../shared/openeo-api`` and ``../shared/openeo-processes`` beside this checkout);
- ``src/openeo_test_suite``: a copy of the installed package, with the general part's request
  bodies in it (the wheel lacks them); ours (``payload_examples/``) load SENTINEL2_L2A from the
  sample archive where the suite's repository loads a collection of EODC's (``CGLS_SSM_1KM``);
  in the copy, the suite's URL joins that make ``//jobs/...`` are corrected (``fix_double_slash``);
- a data directory whose ``sample`` links to the built sample archive (no rebuild), an account
  made with ``terracube users add`` and a client with ``terracube clients add``: the server runs in
  accounts mode and the suite logs in with ``OPENEO_AUTH_METHOD=client_credentials``.

The suite runs in its own Python (``--suite-python`` or TERRACUBE_SUITE_PYTHON, default this one):
its pinned openapi-core holds ``referencing`` back, so it may live in a virtualenv of its own.
The cases listed in ``expected.py`` are skipped with their reasons (``suite_plugin.py``); then an
audit runs just those, each of which must still fail as listed. Prints a line per part (counts),
per reason of the skips and per unexpected outcome (``UNEXPECTED``, exit 1): a failure, a listed
name or case that matches no test, a listed case that passes in the audit or fails otherwise.
docs/compliance.md has the results and the reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # expected.py, beside this file
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared"
PASSWORD = "compliance suite's long password"

from expected import Known, by_key, fails_as_listed, known_for  # noqa: E402 (beside this file)

# Part name -> (folder of the suite's tests, extra pytest options).
PARTS = {
    "general": ("tests/general", []),
    "collections": ("tests/collections", []),
    "metadata": ("tests/processes/metadata", []),
    "processing": ("tests/processes/processing", ["--runner=http"]),
    "workflows": ("tests/workflows", ["--s2-collection=SENTINEL2_L2A"]),
}


def suite_root(python: str) -> Path:
    """Where the installed ``openeo_test_suite`` package is, in the suite's Python."""
    out = subprocess.run([python, "-c", "import openeo_test_suite, os; print(os.path.dirname(openeo_test_suite.__file__))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def prepare_workdir(work: Path, package: Path, api_spec: Path, processes_spec: Path) -> None:
    """The layout of the suite's repository: it finds its inputs relative to its package's folder."""
    (work / "assets").mkdir(parents=True)
    (work / "assets" / "openeo-api").symlink_to(api_spec, target_is_directory=True)
    link_processes(processes_spec, work / "assets" / "processes")
    # A copy of the installed package (some 60 small files): the payloads must sit inside it, and
    # the suite joins their paths in a way that works only when its package's folder is absolute.
    shutil.copytree(package, work / "src" / "openeo_test_suite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(HERE / "payload_examples", work / "src" / "openeo_test_suite" / "tests" / "general" / "payload_examples")
    fix_double_slash(work / "src" / "openeo_test_suite")


# The suite joins some URLs as f"{base_url}/jobs/..." and others as f"{base_url}jobs", with one
# base_url: the version URL of /.well-known/openeo, which ends in "/" (and which it also uses when
# given a URL with "openeo" in its path; no URL suits both joins). The first kind asks for
# //jobs/..., a path no openEO server has: its job helpers then read a 404 error without "status"
# and four job tests end in KeyError before testing anything, and its clean-ups delete nothing.
# Those five joins are corrected in the run's copy, to the URL the suite means; no assertion changes.
DOUBLE_SLASH = ('f"{base_url}/', 'f"{base_url.rstrip(\'/\')}/', 5)


def fix_double_slash(package: Path) -> None:
    path = package / "lib" / "compliance_util.py"
    text = path.read_text()
    old, new, count = DOUBLE_SLASH
    if text.count(old) != count:
        raise RuntimeError(f"{path.name} of the installed suite changed ({text.count(old)} joins, not {count}): revisit fix_double_slash")
    path.write_text(text.replace(old, new))


def link_processes(spec: Path, target: Path) -> None:
    """The process specification, linked file by file, with ``assets`` beside the process files.

    The suite resolves a test case's ``{"$ref": "assets/..."}`` against the folder of the process's
    JSON file; the specification keeps those files in ``tests/assets``. Links, not copies.
    """
    for folder in (target, target / "proposals"):
        folder.mkdir(parents=True)
        source = spec / folder.relative_to(target)
        for entry in source.iterdir():
            if entry.name != "proposals":
                (folder / entry.name).symlink_to(entry)
        (folder / "assets").symlink_to(spec / "tests" / "assets", target_is_directory=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terracube(env: dict, *args: str, password: str | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "terracube.cli", *args], input=(password + "\n") if password else "",
                            capture_output=True, text=True, env=env, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"terracube {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def start_server(work: Path, sample: Path) -> tuple[subprocess.Popen, str, dict]:
    data = work / "data"
    data.mkdir()
    (data / "sample").symlink_to(sample, target_is_directory=True)
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(data), "TERRACUBE_DATABASE_URL": f"sqlite:///{data / 'terracube.db'}",
           "TERRACUBE_RESULTS_ROOT": str(data / "results"), "TERRACUBE_AUTH": "required", "TERRACUBE_PORT": str(port)}
    terracube(env, "users", "add", "suite", password=PASSWORD)
    out = terracube(env, "clients", "add", "compliance-suite", "--user", "suite")
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    log = open(work / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "terracube.cli", "serve", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"terracube serve exited ({server.returncode}); see {work / 'server.log'}")
        try:
            if requests.get(url + "/health", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.3)
    else:
        server.terminate()
        raise RuntimeError("terracube serve did not answer /health in time")
    auth = {"OPENEO_AUTH_METHOD": "client_credentials", "OPENEO_AUTH_CLIENT_ID": lines["client_id"].strip(),
            "OPENEO_AUTH_CLIENT_SECRET": lines["client_secret"].strip()}
    return server, url, auth


def run_part(python: str, work: Path, part: str, url: str, auth: dict, extra: list[str],
             known: list[Known], audit: bool = False) -> Path:
    """The suite's JUnit XML of one part: the listed cases skipped with their reasons, or (``audit``) only those, run."""
    folder, options = PARTS[part]
    name = f"{part}-audit" if audit else part
    junit = work / f"{name}.xml"
    listed = work / f"{name}-known.json"
    listed.write_text(json.dumps([k.as_plugin_entry() for k in known]))
    env = {**os.environ, **auth, "TERRACUBE_SUITE_KNOWN": str(listed), "TERRACUBE_SUITE_AUDIT": "1" if audit else "0"}
    # The copy, not the installed package; and suite_plugin.py, which labels the process cases and skips the listed ones.
    env["PYTHONPATH"] = os.pathsep.join([str(work / "src"), str(HERE)])
    # As the suite's repository configures it (its conftest.py and pyproject.toml): the plugin, importlib imports.
    command = [python, "-m", "pytest", str(work / "src" / "openeo_test_suite" / folder), "-p", "openeo_test_suite.lib.pytest_plugin", "-p", "suite_plugin",
               "--import-mode=importlib", "-U", url, *options, *extra, "-p", "no:cacheprovider",
               "-q", "--tb=line", "-rfEs", f"--junitxml={junit}", "-o", "junit_family=xunit2", "--rootdir", str(work)]
    with open(work / f"{name}.log", "w") as log:  # the suite's own report; kept with --keep
        subprocess.run(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    return junit


@dataclass
class Outcome:
    part: str
    name: str  # the suite's test name, e.g. test_GET_processes or test_process[add-example3-...]
    outcome: str  # passed, failed, error, skipped
    message: str  # the failure's or skip's first line
    case: str | None = None  # process#index, for the individual process tests
    non_json: str | None = None  # "arguments" or "returns" when the case holds NaN or ±Infinity
    callback: str | None = None  # "yes" when the case's arguments hold a callback
    runner_skips: str | None = None  # "yes" when the suite's http runner cannot send the case's arguments (cubes, labeled arrays)
    known: str | None = None  # the key of the expected.py entry that lists it
    audit: bool = False  # from the audit run, where the listed cases run instead of being skipped


def corrected_spec_errors(python: str, work: Path, url: str, auth: dict) -> list[str]:
    """What the process documents fail against the API document with its known defect corrected."""
    out = work / "corrected-spec.json"
    env = {**os.environ, **auth, "PYTHONPATH": str(work / "src")}
    done = subprocess.run([python, str(HERE / "corrected_spec_check.py"), str(work / "assets" / "openeo-api" / "openapi.yaml"),
                           url, str(out)], env=env, cwd=work, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return [f"the check itself failed: {done.stderr.strip()[-500:]}"]
    return json.loads(out.read_text())


def outcomes(part: str, junit: Path, audit: bool = False) -> list[Outcome]:
    """Every test case of a JUnit XML file."""
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        row = Outcome(part, case.get("name"), "passed", "", audit=audit)
        for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            found = case.find(tag)
            if found is not None:
                row.outcome = outcome
                row.message = (found.get("message") or found.text or "").strip().splitlines()[0][:400] if (found.get("message") or found.text) else ""
                break
        for prop in case.iter("property"):
            setattr(row, prop.get("name"), prop.get("value"))
        rows.append(row)
    return rows


def default_sample() -> Path:
    """The tests' shared archive (TERRACUBE_TEST_DATA_DIR), else the one ``terracube serve`` builds."""
    if os.environ.get("TERRACUBE_TEST_DATA_DIR"):
        return Path(os.environ["TERRACUBE_TEST_DATA_DIR"]) / "sample"
    from terracube.settings import Settings
    return Settings().sample_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--suite-python", default=os.environ.get("TERRACUBE_SUITE_PYTHON", sys.executable))
    parser.add_argument("--api-spec", type=Path, default=SHARED / "openeo-api")
    parser.add_argument("--processes-spec", type=Path, default=SHARED / "openeo-processes")
    parser.add_argument("--sample", type=Path, default=default_sample(), help="the built sample archive (built there if missing)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, JUnit files)")
    parser.add_argument("--no-audit", action="store_true", help="do not run the listed cases afterwards to see that they still fail as listed")
    parser.add_argument("pytest_args", nargs="*", help="more options for the suite's pytest (after --)")
    args = parser.parse_args(argv)

    result = run(args.parts.split(","), args.suite_python, args.api_spec, args.processes_spec, args.sample, args.pytest_args,
                 args.keep, audit=not args.no_audit)
    return 1 if report(result) else 0


@dataclass
class SuiteRun:
    rows: list[Outcome]  # the normal run's, then the audit's
    known: list[Known]  # the entries of expected.py the run applied (those of the parts it ran)
    spec_errors: list[str]  # what terracube's documents fail against the corrected API document


def run(parts: list[str], python: str, api_spec: Path, processes_spec: Path, sample: Path,
        pytest_args: list[str] = (), keep: bool = False, audit: bool = True) -> SuiteRun:
    """Every test's outcome, the suite run part by part against one live server in accounts mode; then the audit."""
    if not (sample / "catalog.json").exists():
        from terracube.data.sample import ensure_sample_archive
        ensure_sample_archive(sample)
    root = suite_root(python)
    work = Path(tempfile.mkdtemp(prefix="terracube-suite-"))
    prepare_workdir(work, root, api_spec.resolve(), processes_spec.resolve())
    server, url, auth = start_server(work, sample.resolve())
    try:
        # First, as the skip of the four tests it excuses depends on it.
        errors = corrected_spec_errors(python, work, url, auth) if "general" in parts else []
        known = {part: known_for(part, corrected_spec_clean=not errors) for part in parts}
        rows = []
        for part in parts:
            rows += outcomes(part, run_part(python, work, part, url, auth, list(pytest_args), known[part]))
        for part in parts:
            if audit and known[part]:
                junit = run_part(python, work, part, url, auth, list(pytest_args), known[part], audit=True)
                rows += outcomes(part, junit, audit=True)
        return SuiteRun(rows, [k for part in parts for k in known[part]], errors)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def classify(result: SuiteRun) -> tuple[list[tuple[Outcome, str]], list[tuple[Outcome, str]], list[Outcome]]:
    """(skipped by us with the listed reason, skipped by the suite with its reason, unexpected outcomes) of a run."""
    ours, suites, unexpected = [], [], []
    for row in result.rows:
        entry = by_key(row.known) if row.known else None
        if row.audit:  # a listed case, run anyway: it must fail as its entry says
            if entry is None or row.outcome not in ("failed", "error"):
                row.message = f"listed in expected.py ({row.known}), but {row.outcome} when run: remove it from the list. {row.message}"
                unexpected.append(row)
            elif not fails_as_listed(entry, row.message):
                row.message = f"listed in expected.py ({row.known}), but fails for another reason: {row.message}"
                unexpected.append(row)
        elif row.outcome == "skipped" and entry is not None:
            ours.append((row, entry.reason))
        elif entry is not None:
            row.message = f"listed in expected.py ({row.known}), but was not skipped: {row.outcome}. {row.message}"
            unexpected.append(row)
        elif row.outcome == "skipped":
            (suites.append((row, row.message)) if row.message else unexpected.append(row))
        elif row.outcome != "passed":
            unexpected.append(row)
    for entry in result.known:  # so that the list cannot rot: every name and case must still select a test
        selected = [r for r in result.rows if not r.audit and r.known == entry.key]
        wanted = [("name", n) for n in entry.names if n != "*"] + [("case", c) for c in entry.cases]
        missing = [value for attr, value in wanted if not any(getattr(r, attr) == value for r in selected)]
        if missing or not selected:
            unexpected.append(Outcome(entry.part, entry.key, "unmatched",
                                      f"listed in expected.py, but selects no collected test: {', '.join(missing) or 'none at all'}"))
    if result.spec_errors:
        unexpected.append(Outcome("general", "corrected_spec_check", "failed",
                                  "terracube's documents fail the corrected API document: " + "; ".join(result.spec_errors)))
    return ours, suites, unexpected


def report(result: SuiteRun) -> list[Outcome]:
    ours, suites, unexpected = classify(result)
    for part in dict.fromkeys(r.part for r in result.rows):
        mine = [r for r in result.rows if r.part == part and not r.audit]
        audited = [r for r in result.rows if r.part == part and r.audit]
        by_us = sum(1 for r, _ in ours if r.part == part)
        by_suite = sum(1 for r, _ in suites if r.part == part)
        passed = sum(1 for r in mine if r.outcome == "passed")
        print(f"== {part}: {len(mine)} tests: {passed} passed, {by_suite} skipped by the suite, {by_us} skipped by terracube "
              f"with a listed reason, {len(mine) - passed - by_suite - by_us} other; audit: {len(audited)} listed cases run; "
              f"{sum(1 for r in unexpected if r.part == part)} unexpected", flush=True)
    reasons: dict[tuple[str, str], list[str]] = {}
    for who, pairs in (("terracube", ours), ("suite", suites)):
        for row, reason in pairs:
            reasons.setdefault((row.part, f"skipped by the {who}: {reason}"), []).append(row.case or row.name)
    for (part, reason), names in reasons.items():
        print(f"skipped\t{part}\t{len(names)}\t{reason}\t{', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
    for row in unexpected:
        print(f"UNEXPECTED\t{row.part}\t{'audit ' if row.audit else ''}{row.outcome}\t{row.case or row.name}\t{row.message}")
    return unexpected


if __name__ == "__main__":
    sys.exit(main())
