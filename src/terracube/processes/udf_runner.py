"""Starting a UDF's process: confined by bubblewrap where it is present, a plain child otherwise.

``run_udf`` hands user code to a fresh Python interpreter (``udf_sandbox.py``). With bubblewrap
(``bwrap``, Debian's ``bubblewrap``) that interpreter sees a file system of its own: the system's
``/usr`` and the Python installation read-only, the request's exchange folder read-only at
``/udf``, a small private ``/tmp``, and nothing else (no data directory, results, database,
uploaded files, keys, ``/root`` or ``/home``). It has no network, its own process tree (the
server's pid is not visible, so it cannot be signalled), no environment but a handful of plain
variables, and limits on address space, CPU time, file size and number of processes. When the
server runs as root, bubblewrap needs root to set this up, and the child gives up root for the
user ``nobody`` before any user code runs.

Without bubblewrap (setting ``udf_sandbox = "auto"`` only) the UDF runs as a plain child
process with the server's rights: a crash, a loop or ``os.kill(os.getppid(), 9)`` cannot end the
server, but a UDF that means harm can (docs/udf.md says exactly what holds).

The answer comes back through a file the server opened for the child (``udf_sandbox`` reads and
writes the format); what the UDF prints comes through a pipe, of which the server keeps the end.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from terracube.errors import OpenEOError
from terracube.processes import udf_sandbox

if TYPE_CHECKING:
    from terracube.settings import Settings

log = logging.getLogger(__name__)

SANDBOX_UID = 65534  # "nobody": whom the child becomes when bubblewrap runs as root
MAX_TASKS = 64  # processes and threads of one UDF inside bubblewrap (RLIMIT_NPROC): no fork bomb
SCRATCH_BYTES = 256 * 2**20  # the private /tmp, a tmpfs
ANSWER_HEADROOM = 64 * 2**20  # answer file size over the memory limit: metadata and coordinates
LOG_TAIL = 20_000  # bytes of the UDF's printed output kept for the log
INSIDE_EXCHANGE = "/udf"
INSIDE_SCRIPT = "/opt/terracube/udf_sandbox.py"
# What the dynamic loader and time zone code read from /etc; nothing else of /etc is shown.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
SETTINGS = ("auto", "bubblewrap")


@dataclass(frozen=True)
class Outcome:
    """How the UDF's process ended: its exit code (negative: the signal), and what it printed."""

    returncode: int
    timed_out: bool
    log: bytes
    confinement: str  # "bubblewrap" or "process"


def SandboxUnavailable(message: str) -> OpenEOError:
    # Not the user's fault and not a bug: this server cannot run UDFs as it was told to.
    return OpenEOError(message, code="FeatureUnsupported", status=501)


# --- choosing how a UDF runs ----------------------------------------------------------------


def confinement(setting: str, sandbox_required: bool = False) -> str:
    """``"bubblewrap"`` or ``"process"``: how the next UDF runs.

    ``setting`` is ``udf_sandbox`` (``auto``: bubblewrap if it works here, else a plain child
    process; ``bubblewrap``: bubblewrap or nothing). ``sandbox_required`` makes any setting mean
    ``bubblewrap``: a server with accounts passes it, as one user's UDF must not read another's data.
    """
    if setting not in SETTINGS:
        raise SandboxUnavailable(f"The setting udf_sandbox is {setting!r}; it must be one of {', '.join(SETTINGS)}.")
    problem = bubblewrap_problem()
    if problem is None:
        return "bubblewrap"
    if setting == "bubblewrap" or sandbox_required:
        why = "this server runs with accounts" if sandbox_required else "the setting udf_sandbox is 'bubblewrap'"
        raise SandboxUnavailable(
            f"run_udf is not available: {why}, so UDFs must run confined by bubblewrap, and {problem}. "
            "The operator can install it (Debian: apt-get install bubblewrap)."
        )
    _warn_unconfined(problem)
    return "process"


def bubblewrap_problem() -> str | None:
    """None when bubblewrap can confine a UDF on this machine, else why not (for messages and logs)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (the program bwrap) is not installed"
    return _probe(bwrap, os.geteuid() == 0)


@lru_cache
def _probe(bwrap: str, as_root: bool) -> str | None:
    """Start the interpreter once in the very sandbox a UDF gets: kernels and policies may forbid it."""
    with tempfile.TemporaryDirectory(prefix="terracube-udf-probe-") as exchange:
        command = bubblewrap_command(bwrap, as_root, Path(exchange), []) + [sys.executable, "-I", "-S", "-c", "pass"]
        try:
            done = subprocess.run(command, env=_environment("/tmp"), capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap does not start here ({error})"
    if done.returncode != 0:
        return f"bubblewrap does not start here ({done.stderr.decode('utf-8', 'replace').strip() or done.returncode})"
    return None


@lru_cache
def _warn_unconfined(problem: str) -> None:
    log.warning("UDFs run as plain child processes with the server's rights, not confined: %s (docs/udf.md).", problem)


# --- the bubblewrap command -----------------------------------------------------------------


def _python_dirs() -> list[Path]:
    """The folders the interpreter and its packages live in, outermost only, outside /usr."""
    paths = sysconfig.get_paths()
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    found |= {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs = sorted({Path(p) for p in found if p and os.path.isdir(p)})
    return [d for d in dirs if not d.is_relative_to("/usr") and not any(d != o and d.is_relative_to(o) for o in dirs)]


def private_paths(settings: Settings) -> list[Path]:
    """What a UDF must never see: the server's data, results, uploaded files, database and configuration."""
    paths = [settings.data_dir, settings.files_root, settings.collections_file, os.environ.get("TERRACUBE_CONFIG")]
    paths += list(settings.load_stac_local_dirs or ())
    if settings.results_root and "://" not in settings.results_root:
        paths.append(settings.results_root)
    if settings.database_url and settings.database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        paths.append(make_url(settings.database_url).database)
    return [Path(p).resolve() for p in paths if p]


def bubblewrap_command(bwrap: str, as_root: bool, exchange: Path, private: list[Path]) -> list[str]:
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "udf"]
    # As root, bubblewrap needs no user namespace; the child keeps the two capabilities it needs to
    # become nobody (and loses them by doing so). Otherwise a user namespace, and no more inside.
    args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if as_root else ["--unshare-user", "--disable-userns"]
    made: set[str] = {"/"}

    def bind(source: Path | str, inside: str) -> None:
        for parent in reversed(Path(inside).parents):  # created readable: bwrap's own default is 0700
            if str(parent) not in made:
                args.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(str(parent))
        args.extend(["--ro-bind", str(source), inside])
        made.add(inside)

    bound = [Path("/usr")]
    bind("/usr", "/usr")
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args.extend(["--symlink", os.readlink(name), name])
        elif os.path.isdir(name):
            bind(name, name)
            bound.append(Path(name))
    for name in ETC_FILES:
        if os.path.exists(name):
            bind(name, name)
    args.extend(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(SCRATCH_BYTES), "--tmpfs", "/tmp"])
    for directory in _python_dirs():
        bind(directory, str(directory))
        bound.append(directory)
    bind(udf_sandbox.__file__, INSIDE_SCRIPT)
    bind(exchange, INSIDE_EXCHANGE)
    # Should the server's data lie inside a folder the interpreter needs, it is covered up: a folder
    # by an empty tmpfs, a file by an empty file (not /dev/null: devices do not open in the sandbox).
    for path in private:
        if path.exists() and any(path.is_relative_to(b.resolve()) for b in bound):
            if path.is_dir():
                args.extend(["--tmpfs", str(path)])
            else:
                (exchange / ".empty").touch()
                args.extend(["--ro-bind", str(exchange / ".empty"), str(path)])
    return args + ["--chdir", "/tmp"]


def _environment(home: str) -> dict[str, str]:
    # Nothing of the server's environment (TERRACUBE_* secrets, credentials) reaches the UDF.
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", **threads}


# --- running ----------------------------------------------------------------------------------


def run(directory: Path, request: dict, how: str, settings: Settings, timeout: float) -> Outcome:
    """Run ``udf_sandbox.py`` on the exchange folder; the answer is left in ``directory / "answer"``."""
    memory = int(settings.udf_memory_limit)
    limits = {"memory": memory, "cpu": cpu_seconds(timeout), "file_size": memory + ANSWER_HEADROOM if memory else None,
              "processes": MAX_TASKS if how == "bubblewrap" else None}
    as_root = os.geteuid() == 0
    request = {**request, "limits": limits, "supervise": how != "bubblewrap", "uid": SANDBOX_UID if how == "bubblewrap" and as_root else None}
    (directory / "request.json").write_text(json.dumps(request), encoding="utf-8")
    answer = os.open(directory / "answer", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if how == "bubblewrap":
        bwrap = shutil.which("bwrap") or "bwrap"
        command = bubblewrap_command(bwrap, as_root, directory, private_paths(settings))
        command += [sys.executable, "-I", INSIDE_SCRIPT, INSIDE_EXCHANGE, str(answer)]
        cwd, env = "/", _environment("/tmp")
    else:
        # -I: no PYTHONPATH, no user site, not the script's folder (processes/ has a math.py).
        command = [sys.executable, "-I", udf_sandbox.__file__, str(directory), str(answer)]
        cwd, env = str(directory), _environment(str(directory))
    reader, writer = os.pipe()
    try:
        # A new session: the server can end the whole process group, and no terminal signal reaches it.
        child = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=writer, stderr=writer,
                                 pass_fds=(answer,), start_new_session=True)
    except OSError as error:
        os.close(reader)
        raise SandboxUnavailable(f"The UDF process could not start: {error}.") from None
    finally:
        os.close(writer)
        os.close(answer)
    tail = [b""]
    keeper = threading.Thread(target=_keep_tail, args=(reader, tail), daemon=True, name="udf-output")
    keeper.start()
    try:
        timed_out = not _ended(child.pid, timeout)
    finally:
        # The child is not reaped yet, so its process group id cannot have gone to anybody else:
        # end whatever the UDF left in the group (all of it, at a timeout).
        _kill_group(child.pid)
        returncode = child.wait()
    # Inside bubblewrap nothing outlives the child; without, a process that escaped the group may
    # hold the pipe open: then the output is what arrived until now.
    keeper.join(2)
    if how == "bubblewrap" and returncode > 128:
        returncode = -(returncode - 128)  # bubblewrap exits with 128 + the signal that ended the child
    return Outcome(returncode, timed_out, tail[0], how)


def cpu_seconds(timeout: float) -> int:
    """The CPU time limit: a backstop for UDFs that burn several cores, one second past the wall clock's."""
    return math.ceil(timeout) + 1


def _ended(pid: int, timeout: float) -> bool:
    """Wait until the process ends or the time is up, without reaping it."""
    handle = os.pidfd_open(pid)
    try:
        poller = select.poll()  # not select(): a busy server's descriptors may be numbered past 1024
        poller.register(handle, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(handle)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _keep_tail(fd: int, tail: list[bytes]) -> None:
    with open(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            tail[0] = (tail[0] + chunk)[-LOG_TAIL:]
