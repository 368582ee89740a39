"""UDFs confined: what a UDF can reach, with bubblewrap and without it (docs/udf.md, "Confinement").

Every UDF here runs through the real ``run_udf`` (or a live server and the official client), in a
real bubblewrap sandbox or a real child process. A UDF reports what it saw by raising an error
whose message carries a JSON report, which the test reads from the openEO error.

Without bubblewrap (``udf_sandbox = "auto"`` on a machine without ``bwrap``, made here by a
``PATH`` without it) the same probes see the server's secrets: those tests show what the plain
child process does not protect, and that the probes can see what they look for.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import sys
import sysconfig
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import openeo
import psutil
import pytest
import requests
from openeo.rest import OpenEoApiError

from terracube.errors import OpenEOError
from terracube.processes import udf_runner
from terracube.processes.env import ProcessEnv
from terracube.processes.udf import run_udf
from terracube.settings import Settings

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.processes.helpers import make_cube

SECRET = "signing-secret-" + uuid.uuid4().hex
IDENTITY = "def apply_datacube(cube, context):\n    return cube\n"
# Reports every path it can read or list, and the environment it got.
LOOK = """
import json, os

def apply_datacube(cube, context):
    seen = {}
    for path in context["paths"]:
        try:
            if os.path.isdir(path):
                seen[path] = sorted(os.listdir(path))
            else:
                with open(path, "rb") as f:
                    seen[path] = f.read(200).decode("latin-1")
        except OSError:
            seen[path] = None
    raise RuntimeError("REPORT" + json.dumps({"seen": seen, "env": dict(os.environ)}))
"""
WRITE = """
import json

def apply_datacube(cube, context):
    written = []
    for path in context["paths"]:
        try:
            with open(path, "w") as f:
                f.write("written by a UDF")
            written.append(path)
        except OSError:
            pass
    raise RuntimeError("REPORT" + json.dumps(written))
"""
CONNECT = """
import json, socket

def apply_datacube(cube, context):
    reached = []
    for host, port in context["addresses"]:
        try:
            socket.create_connection((host, port), timeout=3).close()
            reached.append([host, port])
        except OSError:
            pass
    raise RuntimeError("REPORT" + json.dumps(reached))
"""
FORK_BOMB = "import os\n\ndef apply_datacube(cube, context):\n    while True:\n        os.fork()\n"
ALLOCATE_50_GIB = "import numpy as np\n\ndef apply_datacube(cube, context):\n    big = np.ones(50 * 2**30 // 8)\n    return cube\n"
KILL_PARENT = "import os\n\ndef apply_datacube(cube, context):\n    os.kill(os.getppid(), 9)\n    return cube\n"
# A process in a new session, and a daemon (double fork, new session): both meant to outlive the UDF.
LEAVE_BEHIND = """
import os, subprocess, sys

def apply_datacube(cube, context):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", context["marker"]], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", context["marker"]])
        os._exit(0)
    return cube
"""


def report(error: OpenEOError):
    found = re.search(r"REPORT(.*) \(line \d+ of the UDF", error.message)
    assert found, error.message
    return json.loads(found.group(1))


def udf_error(code: str, settings: Settings, context: dict | None = None) -> OpenEOError:
    with pytest.raises(OpenEOError) as caught:
        run_udf(make_cube(), code, "Python", context=context, env=ProcessEnv(settings=settings))
    assert 400 <= caught.value.status < 500, caught.value.message
    return caught.value


def descendants() -> list[psutil.Process]:
    """This test process's children, less those other tests' session fixtures started (live servers)."""
    return [child for child in psutil.Process().children(recursive=True) if child.pid not in _FIXTURE_PIDS]


_FIXTURE_PIDS: set[int] = set()


@pytest.fixture(autouse=True)
def _children_of_other_fixtures():
    """Servers started by session fixtures before this test are not the UDF's leftovers."""
    _FIXTURE_PIDS.clear()
    _FIXTURE_PIDS.update(child.pid for child in psutil.Process().children(recursive=True))
    yield


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in (process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture(scope="module")
def bubblewrap():
    problem = udf_runner.bubblewrap_problem()
    if problem:
        # CI installs it (.ci/run): there, its absence is a failure, not a silent skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"BUBBLEWRAP NOT USABLE: the confinement tests did NOT run: {problem}")


@pytest.fixture
def server_files(tmp_path, monkeypatch) -> Settings:
    """A server's data directory with a database and a key in it, and a secret in its environment."""
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "terracube.db") as db:
        db.execute("create table jobs (id text)")
    (data / "jobs-signing.key").write_text("KEY-" + SECRET)
    (data / "files").mkdir()
    monkeypatch.setenv("TERRACUBE_SIGNING_SECRET", SECRET)
    return Settings(data_dir=data, udf_timeout=30, udf_sandbox="auto")


@pytest.fixture(params=["bubblewrap", "process"])
def mode(request, tmp_path, monkeypatch) -> str:
    """Each test once in bubblewrap and once as a plain child process (no bwrap on the PATH)."""
    if request.param == "bubblewrap":
        request.getfixturevalue("bubblewrap")
    else:
        monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    return request.param


# --- what a UDF can see -----------------------------------------------------------------------


def test_a_confined_udf_sees_no_data_database_key_home_or_secret(bubblewrap, server_files, data_dir):
    data = server_files.data_dir
    paths = [str(data), str(data / "terracube.db"), str(data / "jobs-signing.key"), str(data / "files"),
             str(data_dir), str(data_dir / "sample"), "/etc/passwd", "/etc/shadow", "/home", str(Path(__file__).parent)]
    seen = report(udf_error(LOOK, server_files, {"paths": paths}))
    assert seen["seen"] == {path: None for path in paths}
    assert not any(name.startswith("TERRACUBE_") for name in seen["env"]) and SECRET not in json.dumps(seen["env"])
    assert set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


def test_without_bubblewrap_the_same_udf_reads_the_servers_files(server_files, tmp_path, monkeypatch):
    """What the plain child process does not protect (and proof that the probe above can see)."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    key = str(server_files.data_dir / "jobs-signing.key")
    seen = report(udf_error(LOOK, server_files, {"paths": [key]}))
    assert seen["seen"][key] == "KEY-" + SECRET
    assert SECRET not in json.dumps(seen["env"])  # the environment is clean in both modes


def test_a_confined_udf_writes_only_to_its_private_tmp(bubblewrap, server_files):
    data = server_files.data_dir
    targets = [str(data / "planted.txt"), str(data / "terracube.db"), "/udf/request.json", "/udf/planted.txt",
               os.path.join(sys.prefix, "planted.txt"), "/etc/planted.txt", "/usr/planted.txt", "/tmp/scratch.txt"]
    written = report(udf_error(WRITE, server_files, {"paths": targets}))
    assert written == ["/tmp/scratch.txt"]
    assert not (data / "planted.txt").exists() and not Path(sys.prefix, "planted.txt").exists()
    with sqlite3.connect(data / "terracube.db") as db:  # the database is untouched
        assert db.execute("select name from sqlite_master").fetchall() == [("jobs",)]


def test_network_a_confined_udf_has_none(server_files, mode):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        reached = report(udf_error(CONNECT, server_files, {"addresses": [["127.0.0.1", port], ["1.1.1.1", 53]]}))
        listener.settimeout(0.5)
        if mode == "bubblewrap":
            assert reached == []
            with pytest.raises(TimeoutError):
                listener.accept()  # nobody knocked
        else:  # the plain child process reaches the server's loopback
            assert ["127.0.0.1", port] in reached


# --- limits ---------------------------------------------------------------------------------


def test_a_fork_bomb_is_contained_and_leaves_nothing(bubblewrap, server_files):
    settings = server_files.model_copy(update={"udf_timeout": 15})
    peak = [0]
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], len(descendants()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    counter = threading.Thread(target=count)
    counter.start()
    started = time.monotonic()
    try:
        error = udf_error(FORK_BOMB, settings)
    finally:
        done.set()
        counter.join()
    assert error.code == "UdfError"
    assert "BlockingIOError" in error.message or "time limit of 15 s" in error.message
    assert time.monotonic() - started < 40
    # It did fork (the sampler saw it), up to the limit and not beyond: bubblewrap's processes and slack.
    assert 16 <= peak[0] <= udf_runner.MAX_TASKS + 4
    assert descendants() == []


def test_allocating_50_gib_is_a_memory_error(server_files, mode):
    error = udf_error(ALLOCATE_50_GIB, server_files)
    assert error.code == "UdfError" and "ran out of memory" in error.message and "2 GiB" in error.message


def test_killing_the_parent_does_not_reach_the_server(server_files, mode):
    me = os.getpid()
    try:
        run_udf(make_cube(), KILL_PARENT, "Python", env=ProcessEnv(settings=server_files))
    except OpenEOError as error:  # bubblewrap: the parent is the sandbox's init, which a UDF may not signal
        assert error.status == 400 and ("PermissionError" in error.message or "SIGKILL" in error.message)
    assert psutil.pid_exists(me) and os.getpid() == me
    assert descendants() == []


def test_nothing_a_udf_starts_outlives_it(server_files, mode):
    marker = "udf-leftover-" + uuid.uuid4().hex
    result = run_udf(make_cube(), LEAVE_BEHIND, "Python", context={"marker": marker}, env=ProcessEnv(settings=server_files))
    np.testing.assert_array_equal(result.values, make_cube().values)
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
    assert descendants() == []


# --- the setting ----------------------------------------------------------------------------


def test_bubblewrap_required_but_missing_refuses_run_udf(server_files, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    settings = server_files.model_copy(update={"udf_sandbox": "bubblewrap"})
    with pytest.raises(OpenEOError) as caught:
        run_udf(make_cube(), IDENTITY, "Python", env=ProcessEnv(settings=settings))
    assert caught.value.code == "FeatureUnsupported" and caught.value.status == 501
    assert "bubblewrap" in caught.value.message and "apt-get install bubblewrap" in caught.value.message
    # What a server with accounts asks for, whatever the setting:
    with pytest.raises(OpenEOError, match="runs with accounts"):
        udf_runner.confinement("auto", sandbox_required=True)
    assert udf_runner.confinement("auto") == "process"


def test_the_servers_data_inside_a_bound_folder_is_covered(bubblewrap, tmp_path):
    """Should the data directory lie inside the Python installation, the sandbox shows it empty."""
    import subprocess

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folder, file = stdlib / "json", stdlib / "this.py"
    assert any(folder.iterdir()) and file.stat().st_size > 0
    command = udf_runner.bubblewrap_command("bwrap", os.geteuid() == 0, tmp_path, [folder, file])
    look = f"import os; print(os.listdir({str(folder)!r}), len(open({str(file)!r}).read()))"
    done = subprocess.run(command + [sys.executable, "-I", "-S", "-c", look], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] 0"


# --- through a live server and the official client ------------------------------------------

KILL_AND_LEAVE = """
import os, subprocess, sys

def apply_datacube(cube, context):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", context["marker"]], start_new_session=True)
    os.kill(os.getppid(), 9)
    return cube
"""


def start_live(data_dir: Path, folder: Path, confined: bool) -> LiveServer:
    env = jobs_env(data_dir, folder, TERRACUBE_UDF_TIMEOUT="30", TERRACUBE_SIGNING_SECRET=SECRET)
    if confined:
        env["TERRACUBE_UDF_SANDBOX"] = "bubblewrap"
    else:
        env["PATH"] = str(folder / "no-bwrap-here")
    return LiveServer(env).start()


@pytest.fixture(scope="module")
def confined_server(bubblewrap, data_dir, tmp_path_factory):
    server = start_live(data_dir, tmp_path_factory.mktemp("confined"), confined=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_server(data_dir, tmp_path_factory):
    server = start_live(data_dir, tmp_path_factory.mktemp("plain"), confined=False)
    yield server
    server.stop()


def small_cube(con):
    corner = {**TUTORIAL_AOI, "east": TUTORIAL_AOI["west"] + 0.005, "north": TUTORIAL_AOI["south"] + 0.003}
    return con.load_collection("SENTINEL2_L2A", spatial_extent=corner, temporal_extent=AFTER, bands=["B04"])


@pytest.mark.parametrize("which", ["confined_server", "plain_server"])
def test_through_the_client_a_udf_killing_its_parent_leaves_the_server_answering(request, which, tmp_path):
    server = request.getfixturevalue(which)
    con = openeo.connect(server.url, default_timeout=300)
    try:
        small_cube(con).apply(openeo.UDF(KILL_PARENT)).download(tmp_path / "out.nc", format="netCDF")
    except OpenEoApiError as error:
        assert error.http_status_code == 400 and error.code == "UdfError"
    assert server.process.poll() is None
    assert requests.get(server.url + "/health", timeout=5).ok
    small_cube(con).download(tmp_path / "after.nc", format="netCDF")  # and it still computes


def test_through_the_client_a_confined_udf_that_kills_its_parent_leaves_nothing_behind(confined_server, tmp_path):
    """Both at once: only bubblewrap holds here (without it, the UDF could first kill its supervisor)."""
    con = openeo.connect(confined_server.url, default_timeout=300)
    marker = "udf-leftover-" + uuid.uuid4().hex
    try:
        small_cube(con).apply(openeo.UDF(KILL_AND_LEAVE, context={"marker": marker})).download(tmp_path / "out.nc", format="netCDF")
    except OpenEoApiError as error:
        assert error.http_status_code == 400 and error.code == "UdfError"
    assert confined_server.process.poll() is None and requests.get(confined_server.url + "/health", timeout=5).ok
    time.sleep(0.5)
    assert processes_with(marker) == []


def test_through_the_client_a_confined_udf_sees_no_secret(confined_server, tmp_path):
    con = openeo.connect(confined_server.url, default_timeout=300)
    paths = [str(Path(confined_server.env["TERRACUBE_DATABASE_URL"].removeprefix("sqlite:///"))), confined_server.env["TERRACUBE_DATA_DIR"]]
    with pytest.raises(OpenEoApiError) as caught:
        small_cube(con).apply(openeo.UDF(LOOK, context={"paths": paths})).download(tmp_path / "x.nc", format="netCDF")
    assert caught.value.http_status_code == 400
    seen = report(caught.value)
    assert seen["seen"] == {path: None for path in paths}
    assert SECRET not in caught.value.message and not any(name.startswith("TERRACUBE_") for name in seen["env"])
