"""The child side of ``run_udf``: runs one Python UDF in a process of its own.

The server (``udf_runner.py``) starts ``python -I udf_sandbox.py WORKDIR ANSWER_FD``: inside
bubblewrap where it is present, else as a plain child process. WORKDIR holds what the server
wrote (``request.json``, the cube as ``input.npz`` plus ``input.json``); this process only reads
it. The answer goes to the already open file descriptor ANSWER_FD: one JSON line (the status, and
the result's dimensions and coordinates), then the result's arrays in numpy's ``.npy`` format.
Nothing travels as a pickle: the server reads the answer with ``allow_pickle=False`` and checks
every size against the file first, so a UDF cannot run code in the server or make it allocate
what the answer does not hold.

Before any user code runs, this process sets its resource limits (address space, CPU time, file
size, and inside bubblewrap the number of processes) and, when bubblewrap had to run as root,
gives up root for the unprivileged user the request names. Without bubblewrap it first forks:
the parent stays behind as the UDF's parent, so ``os.getppid()`` is not the server, and as a
child subreaper it kills whatever the UDF left running.

This file imports nothing from terracube, so that the child starts with numpy, pandas and xarray
only; the server imports the exchange functions from here to speak the same format.
"""

from __future__ import annotations

import inspect
import json
import linecache
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

UDF_FILENAME = "<udf>"
# The answer's first line (status and metadata) may be at most this long.
HEADER_LIMIT = 16 * 2**20


# --- the exchange format (server and child) ------------------------------------------------


def _json_safe(attrs: dict) -> dict:
    """The attributes JSON can carry; others (CRS objects, functions) stay behind."""
    safe = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            continue
        safe[str(key)] = value
    return safe


def _plain(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype == object:
        # Band names and other labels are object arrays of str in xarray; numpy's unicode is plain.
        try:
            return values.astype(str) if all(isinstance(v, str) for v in values.ravel()) else values.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"{what} holds Python objects; a UDF must return numbers (and text labels only).") from None
    return values


def _parts(array) -> tuple[dict, dict[str, np.ndarray]]:
    """An ``xarray.DataArray`` as JSON metadata and plain numpy arrays (values, then coordinates)."""
    arrays = {"values": _plain(np.asarray(array.values), "The UDF's result")}
    coords = []
    for index, (name, coord) in enumerate(array.coords.items()):
        arrays[f"coord{index}"] = _plain(np.asarray(coord.values), f"Coordinate '{name}'")
        coords.append({"name": str(name), "dims": [str(d) for d in coord.dims], "attrs": _json_safe(coord.attrs)})
    meta = {"dims": [str(d) for d in array.dims], "coords": coords, "attrs": _json_safe(array.attrs),
            "name": array.name if isinstance(array.name, str) else None}
    return meta, arrays


def _labels(values: np.ndarray) -> np.ndarray:
    # Text labels back as Python str (object), as xarray and the rest of terracube keep them.
    return values.astype(object) if values.dtype.kind == "U" else values


def _assemble(meta: dict, arrays: dict[str, np.ndarray]):
    import xarray as xr

    coords = {c["name"]: xr.Variable(c["dims"], _labels(arrays[f"coord{i}"]), attrs=c["attrs"]) for i, c in enumerate(meta["coords"])}
    return xr.DataArray(arrays["values"], dims=meta["dims"], coords=coords, attrs=meta["attrs"], name=meta["name"])


def save_array(array, directory: Path, stem: str) -> None:
    """Write an ``xarray.DataArray`` as ``STEM.npz`` (values and coordinates) and ``STEM.json``."""
    meta, arrays = _parts(array)
    np.savez(directory / f"{stem}.npz", **arrays)
    (directory / f"{stem}.json").write_text(json.dumps(meta), encoding="utf-8")


def load_array(directory: Path, stem: str):
    meta = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    with np.load(directory / f"{stem}.npz", allow_pickle=False) as stored:
        return _assemble(meta, {name: stored[name] for name in stored.files})


def write_answer(stream, status: dict, array=None) -> None:
    """The child's answer: the status as one JSON line, then (when ``ok``) the result's arrays."""
    header = dict(status)
    if array is not None:
        meta, arrays = _parts(array)
        header.update(meta=meta, arrays=list(arrays))
    stream.write(json.dumps(header).encode("utf-8") + b"\n")
    for values in (arrays.values() if array is not None else ()):
        np.lib.format.write_array(stream, values, allow_pickle=False)


def _read_npy(stream, end: int) -> np.ndarray:
    """One ``.npy`` array from the answer, refused before reading if the file cannot hold it."""
    start = stream.tell()
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unexpected .npy version {version}")
    if dtype.hasobject:
        raise ValueError("an array of Python objects")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > end - stream.tell():
        raise ValueError("an array larger than the answer holds")
    stream.seek(start)
    return np.lib.format.read_array(stream, allow_pickle=False)


def read_answer(path: Path) -> tuple[dict | None, object]:
    """The status and the result (or None) from an answer file; ``(None, None)`` if there is none."""
    end = path.stat().st_size if path.is_file() else 0
    if end == 0:
        return None, None
    with open(path, "rb") as stream:
        header = json.loads(stream.readline(HEADER_LIMIT))
        if not isinstance(header, dict):
            raise TypeError("its first line is not a status")
        if not header.get("ok"):
            return header, None
        arrays = {name: _read_npy(stream, end) for name in header["arrays"]}
        return header, _assemble(header["meta"], arrays)


# --- running the UDF (child only) -----------------------------------------------------------


def _wants_dataarray(function) -> bool:
    """``apply_datacube(cube: xarray.DataArray, ...)`` gets the array; older UDFs get an ``XarrayDataCube``."""
    import xarray as xr

    parameters = list(inspect.signature(function).parameters.values())
    annotation = parameters[0].annotation if parameters else inspect.Parameter.empty
    if isinstance(annotation, str):  # ``from __future__ import annotations`` in the UDF
        return annotation.rsplit(".", 1)[-1] == "DataArray"
    return annotation is xr.DataArray


def _call(function, value, context):
    # ``context`` is optional in the convention: pass it only to functions that take two arguments.
    takes = len(inspect.signature(function).parameters)
    return function(value, context) if takes >= 2 else function(value)


def _apply_datacube(function, cube, context):
    import xarray as xr

    if _wants_dataarray(function):
        result = _call(function, cube, context)
    else:
        from openeo.udf import XarrayDataCube

        result = _call(function, XarrayDataCube(cube), context)
    if hasattr(result, "get_array"):
        result = result.get_array()
    if not isinstance(result, xr.DataArray):
        raise TypeError(f"apply_datacube must return an xarray.DataArray (or XarrayDataCube), not {type(result).__name__}.")
    return result


def _apply_timeseries(function, cube, context, dtype: str):
    """Call the UDF once per pixel with a ``pandas.Series`` over ``t`` (labels: the dates)."""
    import pandas as pd

    moved = cube.transpose(..., "t")
    index = pd.Index(moved.indexes["t"]) if "t" in moved.indexes else pd.RangeIndex(moved.sizes["t"])
    rows = moved.values.reshape(-1, moved.sizes["t"])
    out = np.empty(rows.shape, dtype=dtype)
    for i, row in enumerate(rows):
        answer = _call(function, pd.Series(row, index=index, name="values", copy=False), context)
        values = np.asarray(answer.values if hasattr(answer, "values") else answer, dtype=dtype).ravel()
        if values.shape != (len(index),):
            raise ValueError(f"apply_timeseries returned {values.size} values for a series of {len(index)}; it must keep the length.")
        out[i] = values
    return moved.copy(data=out.reshape(moved.shape)).transpose(*cube.dims)


def _udf_line(error: BaseException, code: str) -> dict:
    """Where in the UDF the error happened: line number and text, for the user's message."""
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == UDF_FILENAME:
            line = frame.lineno
    if not line:
        return {}
    lines = code.splitlines()
    return {"line": line, "source": lines[line - 1].strip() if 0 < line <= len(lines) else ""}


def run(request: dict, cube) -> tuple[dict, object]:
    code = request["code"]
    try:
        # A linecache entry lets tracebacks printed by the UDF itself show its own lines.
        linecache.cache[UDF_FILENAME] = (len(code), None, code.splitlines(True), UDF_FILENAME)
        namespace = {"__name__": "__udf__"}
        exec(compile(code, UDF_FILENAME, "exec"), namespace)  # noqa: S102 - running the UDF is what this process is for
        function = namespace[request["function"]]
        if request["function"] == "apply_timeseries":
            result = _apply_timeseries(function, cube, request["context"], request["dtype"])
        else:
            result = _apply_datacube(function, cube, request["context"])
        return {"ok": True}, result
    except MemoryError:
        return {"ok": False, "kind": "memory"}, None
    except BaseException as error:  # noqa: BLE001 - the UDF's own errors (even SystemExit) go back as data
        return {"ok": False, "kind": "error", "type": type(error).__name__, "message": str(error), **_udf_line(error, code)}, None


# --- confinement steps (child only) ---------------------------------------------------------


def _children() -> list[int]:
    mine, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    # The parent pid is the second field after the command name, which may hold spaces.
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == mine:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _supervise() -> None:
    """Without bubblewrap: fork, run the UDF in the child, and stay as its parent and subreaper.

    ``os.getppid()`` in the UDF is then this process, not the server; and every process the UDF
    starts (in a new session, too) is re-parented here when its parent ends, and killed at the end.
    """
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    udf = os.fork()
    if udf == 0:
        return
    _, status = os.waitpid(udf, 0)
    for _ in range(10_000):  # until no descendant is left (a fork bomb takes some rounds)
        children = _children()
        if not children:
            break
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.001)
                    break
            except ChildProcessError:
                break
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # end the way the UDF's process ended, so the server reads the same signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _drop_root(uid: int | None) -> None:
    """Inside bubblewrap run as root: become the unprivileged user (which also clears every capability)."""
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid():
        raise SystemExit("the UDF sandbox could not give up root rights")


def _set_limits(limits: dict) -> None:
    import resource

    def limit(kind: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))

    limit(resource.RLIMIT_CORE, 0)
    if limits.get("cpu"):  # SIGXCPU at the limit, SIGKILL a second later
        limit(resource.RLIMIT_CPU, limits["cpu"], limits["cpu"] + 1)
    if limits.get("file_size"):
        limit(resource.RLIMIT_FSIZE, limits["file_size"])
    if limits.get("processes"):
        limit(resource.RLIMIT_NPROC, limits["processes"])
    if limits.get("memory"):
        limit(resource.RLIMIT_AS, limits["memory"])


def main(argv: list[str]) -> int:
    directory, answer_fd = Path(argv[1]), int(argv[2])
    request = json.loads((directory / "request.json").read_text(encoding="utf-8"))
    if request.get("supervise"):
        _supervise()
    # The libraries a UDF uses are imported before the limits, so the limits are the UDF's own budget.
    import pandas  # noqa: F401
    import xarray  # noqa: F401

    cube = load_array(directory, "input")
    _drop_root(request.get("uid"))
    _set_limits(request.get("limits", {}))
    ours = os.getpid()
    status, result = run(request, cube)
    if os.getpid() != ours:  # a process the UDF forked got here too: only the UDF's own answers
        os._exit(0)
    with os.fdopen(answer_fd, "wb", buffering=0) as answer:  # unbuffered: nothing pending when it is redone
        try:
            write_answer(answer, status, result)
        except MemoryError:
            answer.seek(0)
            answer.truncate()
            write_answer(answer, {"ok": False, "kind": "memory"})
        except OSError:  # EFBIG: the answer is larger than the file size limit (Python ignores SIGXFSZ)
            answer.seek(0)
            answer.truncate()
            write_answer(answer, {"ok": False, "kind": "size"})
        except (TypeError, ValueError) as error:
            answer.seek(0)
            answer.truncate()
            write_answer(answer, {"ok": False, "kind": "error", "type": type(error).__name__, "message": str(error)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
