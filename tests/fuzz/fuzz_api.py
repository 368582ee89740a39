#!/usr/bin/env python3
"""Fuzz a live ``terracube serve`` with Schemathesis over every operation of its /openapi.json.

What CI runs (``.ci/run``, a step of its own, not part of pytest) and what docs/compliance.md
("Fuzzing") describes. The server runs in laptop mode (no accounts, no login) on a free 127.0.0.1
port, with a temporary data directory whose ``sample`` links to the built sample archive
(``TERRACUBE_TEST_DATA_DIR``, else ``bench/.cache/data`` which ``bench/run --quick`` builds; built
here if missing). Schemathesis reads ``tests/fuzz/schemathesis.toml``: the checks (no 5xx; status
codes, content types and bodies as the document declares them) and the few precise exclusions,
each with its reason. Exit status: Schemathesis's (non-zero on any failure), or 1 when the run
outlives its time bound.

    python tests/fuzz/fuzz_api.py                 # as CI: --max-time 120
    python tests/fuzz/fuzz_api.py --max-time 30 --keep   # shorter; keep the folder (server log, reports)
    python tests/fuzz/fuzz_api.py --url http://127.0.0.1:8000   # a server you started yourself
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "schemathesis.toml"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_archive() -> Path:
    """The built sample archive, shared with the tests and benchmarks (built once, under a file lock)."""
    from terracube.data.sample import ensure_sample_archive

    root = Path(os.environ.get("TERRACUBE_TEST_DATA_DIR") or REPO / "bench" / ".cache" / "data")
    ensure_sample_archive(root / "sample")
    return root / "sample"


def start_server(work: Path) -> tuple[subprocess.Popen, str]:
    data = work / "data"
    data.mkdir()
    (data / "sample").symlink_to(sample_archive(), target_is_directory=True)
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(data), "TERRACUBE_DATABASE_URL": f"sqlite:///{data / 'terracube.db'}",
           "TERRACUBE_RESULTS_ROOT": str(data / "results"), "TERRACUBE_AUTH": "auto"}
    env.pop("TERRACUBE_TEST_DATA_DIR", None)
    log = open(work / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "terracube.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"terracube serve exited ({server.returncode}); see {work / 'server.log'}")
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return server, url
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("terracube serve did not answer /health in time")


def fuzz(url: str, work: Path, max_time: int, extra: list[str]) -> int:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [str(schemathesis if schemathesis.exists() else "schemathesis"), "--config-file", str(CONFIG), "run",
               f"{url}/openapi.json", "--checks", CHECKS, "--max-time", str(max_time), "--workers", "1",
               "--report", "junit", "--report-dir", str(work / "report"), "--no-color", *extra]
    print("+", " ".join(command), flush=True)
    try:
        # The bound: Schemathesis stops starting new cases at --max-time; a request in flight may add its timeout.
        return subprocess.run(command, timeout=max_time + 90, cwd=HERE).returncode
    except subprocess.TimeoutExpired:
        print(f"fuzzing outlived its bound ({max_time + 90} s): failing", file=sys.stderr)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-time", type=int, default=120, help="seconds of fuzzing in all (default 120)")
    parser.add_argument("--url", help="fuzz this running server instead of starting one")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (server log, JUnit report)")
    args, extra = parser.parse_known_args()  # anything else goes to `schemathesis run` (e.g. --include-path /result)
    work = Path(tempfile.mkdtemp(prefix="terracube-fuzz-"))
    started = time.monotonic()
    server = None
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            server, url = start_server(work)
        status = fuzz(url, work, args.max_time, extra)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        log = work / "server.log"
        if log.exists() and "Traceback" in log.read_text():  # a 500's cause, for the CI log
            print(f"--- {log} ---\n{log.read_text()[-20000:]}", file=sys.stderr)
        print(f"fuzzing took {time.monotonic() - started:.0f} s in all; working folder {work}"
              + ("" if args.keep else " (removed)"), flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
