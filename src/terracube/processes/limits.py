"""Size limits on what processes create, checked on shapes before anything is computed.

Loads refuse to read too much (``load.py``'s ``check_size``), but a small read can still become a
huge cube (``resample_spatial`` to a finer grid) and a 150-byte request a huge array
(``array_create`` with a large ``repeat``). Cubes are lazy dask arrays, so their size is known
when they are built: the processes that make sizes from user numbers check them here first, and
the evaluator checks every node's value once more (``check_value``), so no process escapes.

Two bounds: ``ProcessEnv.max_values`` for synchronous requests (413 ``PayloadTooLarge``: a batch
job may do it), and ``settings.max_cube_values`` / ``settings.max_array_length`` for every request
(400 ``ProcessParameterInvalid``: nobody may).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from terracube.errors import PayloadTooLarge, ProcessParameterInvalid
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings


def _setting(env: ProcessEnv | None, name: str) -> int:
    settings = env.settings if env is not None else None
    return getattr(settings, name) if settings is not None else Settings.model_fields[name].default


def check_values(env: ProcessEnv | None, values: float, what: str) -> None:
    """Refuse a cube of ``values`` values (``what`` says which, for the message) before it is built."""
    cap = _setting(env, "max_cube_values")
    if values > cap:
        raise ProcessParameterInvalid(f"{what} would hold {values:,.0f} values, more than the {cap:,} this server allows.")
    limit = env.max_values if env is not None else None
    if limit is not None and values > limit:
        raise PayloadTooLarge(
            f"{what} would hold {values:,.0f} values, more than the {limit:,} allowed for synchronous processing. "
            "Use a smaller extent or a coarser resolution, or run it as a batch job (POST /jobs)."
        )


def check_array_length(env: ProcessEnv | None, length: float, what: str, values_each: float = 1) -> None:
    """Refuse an array of ``length`` elements computed at once (not lazily) before it is made.

    ``values_each``: in a callback an element may itself be a cube of pixels (``array_create([x, y])``).
    """
    cap = _setting(env, "max_array_length")
    if length > cap:
        raise ProcessParameterInvalid(f"{what} would have {length:,.0f} elements, more than the {cap:,} allowed.")
    check_values(env, length * values_each, what)


def _shape_size(value: Any) -> float:
    """The product of a cube's or array's shape; 0 where it is not known (dask's NaN chunk sizes come from filters, which shrink)."""
    try:
        sizes = [float(n) for n in value.shape]
    except (TypeError, ValueError, AttributeError):
        return 0.0
    return 0.0 if any(math.isnan(n) for n in sizes) else float(math.prod(sizes))


def check_value(env: ProcessEnv | None, value: Any, what: str) -> None:
    """The evaluator's check of every node's result, whichever process made it: shape arithmetic only."""
    if isinstance(value, (list, tuple)):
        first = value[0] if value else None
        each = _shape_size(first) if isinstance(first, (xr.DataArray, np.ndarray)) or hasattr(first, "dask") else 1
        check_array_length(env, len(value), what, max(each, 1))
    elif isinstance(value, xr.DataArray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        check_values(env, _shape_size(value), what)


def check_grown(env: ProcessEnv | None, data: xr.DataArray, lengths: dict[str, int], what: str) -> None:
    """Refuse ``data`` grown to ``lengths`` along some dimensions (padding) before it is padded.

    A dimension's labels are made at once, so its length is bounded like an array's too.
    """
    for dim, length in lengths.items():
        cap = _setting(env, "max_array_length")
        if length > cap:
            raise ProcessParameterInvalid(f"{what} would make dimension '{dim}' {length:,} labels long, more than the {cap:,} allowed.")
    values = float(data.size)
    for dim, length in lengths.items():
        values = values / max(1, data.sizes[dim]) * length
    check_values(env, values, what)
