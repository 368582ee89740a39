"""Temporal aggregation and climatology: aggregate_temporal, aggregate_temporal_period,
climatological_normal, anomaly.

Each group of time labels is reduced with ``reduce_dimension`` (so a single reducer process takes
xarray's own reduction); a group without labels is no-data, without calling the reducer. Period
labels are the spec's strings (``2020-06``, ``2023-djf``, ...) and cover the cube's whole extent,
empty periods included. The temporal dimension keeps its name, type and position.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from terracube.errors import NoDataAvailable, ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import float_dtype_for, python_scalar
from terracube.processes.cubes import cube_attrs, reduce_dimension, require_callback, require_cube
from terracube.processes.cubes_dimensions import dimension_types, with_types
from terracube.cube import dimension_type

_TIME_ONLY = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


def temporal_dimension(data: xr.DataArray, dimension: str | None) -> str:
    if dimension is not None:
        if dimension not in data.dims:
            raise ProcessError("DimensionNotAvailable", f"The cube has no dimension '{dimension}'; its dimensions are {list(data.dims)}.")
        return dimension
    temporal = [d for d in data.dims if dimension_type(data, d) == "temporal"]
    if not temporal:
        raise ProcessError("DimensionNotAvailable", f"The cube has no temporal dimension; its dimensions are {list(data.dims)}.")
    if len(temporal) > 1:
        raise ProcessError("TooManyDimensions", f"The cube has several temporal dimensions ({temporal}); name one with 'dimension'.")
    return temporal[0]


def timestamps(data: xr.DataArray, dim: str) -> pd.DatetimeIndex:
    labels = data.indexes[dim]
    if isinstance(labels, pd.DatetimeIndex):
        return labels.tz_localize(None) if labels.tz is not None else labels
    return pd.DatetimeIndex([_instant(v) for v in labels])


def _instant(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def label_index(labels: list) -> pd.Index:
    """Date(-time) labels as datetime64, anything else (``W01``, ``2020-djf``, times) as strings."""
    if labels and all(isinstance(v, str) and not _TIME_ONLY.match(v) for v in labels):
        try:
            return pd.DatetimeIndex([_instant(v) for v in labels])
        except (ValueError, TypeError):
            pass
    return pd.Index([python_scalar(v) for v in labels], dtype=object)


def aggregate_groups(data: xr.DataArray, dim: str, groups: list[np.ndarray], labels: pd.Index, reducer: Any, context: Any) -> xr.DataArray:
    """Reduce each group of positions along ``dim``; one new label per group, no-data for empty groups."""
    pieces = []
    empty = None
    for positions in groups:
        if len(positions):
            piece = reduce_dimension(data.isel({dim: positions}), reducer, dim, context)
        else:
            if empty is None:
                dtype = data.dtype if data.dtype.kind == "f" else float_dtype_for(data.dtype)
                empty = xr.full_like(data.isel({dim: 0}, drop=True), np.nan, dtype=dtype)
                empty.attrs = cube_attrs(data, dropped=dim)
            piece = empty
        pieces.append(piece)
    if not pieces:
        result = data.isel({dim: slice(0, 0)}).drop_vars(dim)
    else:
        result = xr.concat(pieces, dim=dim, coords="minimal", compat="override", combine_attrs="override")
    result = result.assign_coords({dim: labels}).transpose(*data.dims)
    result.attrs = cube_attrs(data)
    return with_types(result, dimension_types(data))


# --- aggregate_temporal ---------------------------------------------------------------------


def _time_of_day(value: str) -> pd.Timedelta:
    return pd.Timedelta(value.rstrip("Z").split("+")[0])


def aggregate_temporal(data: xr.DataArray, intervals: list, reducer: Any, labels: list | None = None, dimension: str | None = None, context: Any = None) -> xr.DataArray:
    require_cube(data)
    require_callback(reducer, "reducer")
    dim = temporal_dimension(data, dimension)
    stamps = timestamps(data, dim)
    groups = []
    for interval in intervals:
        if not isinstance(interval, (list, tuple)) or len(interval) != 2:
            raise ProcessParameterInvalid(f"Each interval must be [start, end], got {interval!r}.")
        start, end = interval
        if all(isinstance(v, str) and _TIME_ONLY.match(v) for v in (start, end)):
            offsets = stamps - stamps.normalize()
            low, high = _time_of_day(start), _time_of_day(end)
            inside = (offsets >= low) & (offsets < high) if low <= high else (offsets >= low) | (offsets < high)
        else:
            low = _instant(start) if start is not None else None
            high = _instant(end) if end is not None else None
            if low is not None and high is not None and high <= low:
                raise ProcessError("TemporalExtentEmpty", f"The interval {interval} is empty: its end is not later than its start.")
            inside = np.ones(len(stamps), dtype=bool)
            if low is not None:
                inside &= np.asarray(stamps >= low)
            if high is not None:
                inside &= np.asarray(stamps < high)
        groups.append(np.nonzero(np.asarray(inside))[0])
    if labels:
        if len(labels) != len(intervals):
            raise ProcessParameterInvalid(f"{len(labels)} labels for {len(intervals)} intervals; they must match.")
        names = list(labels)
    else:
        names = [interval[0] for interval in intervals]
    if len(set(map(repr, names))) != len(names):
        raise ProcessError(
            "DistinctDimensionLabelsRequired", "The interval starts are not distinct; give distinct 'labels' for the intervals."
        )
    return aggregate_groups(data, dim, groups, label_index(names), reducer, context)


# --- aggregate_temporal_period --------------------------------------------------------------

_SEASONS = {12: "djf", 1: "djf", 2: "djf", 3: "mam", 4: "mam", 5: "mam", 6: "jja", 7: "jja", 8: "jja", 9: "son", 10: "son", 11: "son"}
_TROPICAL = {11: "ndjfma", 12: "ndjfma", 1: "ndjfma", 2: "ndjfma", 3: "ndjfma", 4: "ndjfma"}


def _dekad(stamp: pd.Timestamp) -> int:
    return (stamp.month - 1) * 3 + min((stamp.day - 1) // 10, 2) + 1


PERIODS: dict[str, tuple[Callable[[pd.Timestamp], str], str, str]] = {
    # period: (label of a timestamp, pandas frequency to enumerate the extent, unit to floor the start to)
    "hour": (lambda s: f"{s:%Y-%m-%d-%H}", "h", "h"),
    "day": (lambda s: f"{s.year:04d}-{s.dayofyear:03d}", "D", "D"),
    "week": (lambda s: f"{s.isocalendar()[0]:04d}-{s.isocalendar()[1]:02d}", "D", "D"),
    "dekad": (lambda s: f"{s.year:04d}-{_dekad(s):02d}", "D", "D"),
    "month": (lambda s: f"{s.year:04d}-{s.month:02d}", "MS", "M"),
    "season": (lambda s: f"{s.year - (s.month < 3):04d}-{_SEASONS[s.month]}", "MS", "M"),
    "tropical-season": (lambda s: f"{s.year - (s.month < 5):04d}-{_TROPICAL.get(s.month, 'mjjaso')}", "MS", "M"),
    "year": (lambda s: f"{s.year:04d}", "YS", "Y"),
    "decade": (lambda s: f"{s.year // 10 * 10:04d}", "YS", "Y"),
    "decade-ad": (lambda s: f"{(s.year - 1) // 10 * 10 + 1:04d}", "YS", "Y"),
}


def _floor(stamp: pd.Timestamp, unit: str) -> pd.Timestamp:
    if unit == "M":
        return pd.Timestamp(year=stamp.year, month=stamp.month, day=1)
    if unit == "Y":
        return pd.Timestamp(year=stamp.year, month=1, day=1)
    return stamp.floor(unit)


def period_labels(stamps: pd.DatetimeIndex, period: str) -> tuple[list[str], list[str]]:
    """(label of every timestamp, every label of the extent in order)."""
    if period not in PERIODS:
        raise ProcessParameterInvalid(f"'period' must be one of {', '.join(PERIODS)}, got {period!r}.")
    label_of, frequency, unit = PERIODS[period]
    own = [label_of(s) for s in stamps]
    if not len(stamps):
        return own, []
    extent = pd.date_range(_floor(stamps.min(), unit), stamps.max(), freq=frequency)
    return own, list(dict.fromkeys([label_of(s) for s in extent] + sorted(set(own), key=own.index)))


def aggregate_temporal_period(data: xr.DataArray, period: str, reducer: Any, dimension: str | None = None, context: Any = None) -> xr.DataArray:
    require_cube(data)
    require_callback(reducer, "reducer")
    dim = temporal_dimension(data, dimension)
    own, every = period_labels(timestamps(data, dim), period)
    groups = [np.nonzero(np.asarray(own, dtype=object) == label)[0] for label in every]
    return aggregate_groups(data, dim, groups, pd.Index(every, dtype=object), reducer, context)


# --- climatology ----------------------------------------------------------------------------

_NORMAL_KEYS: dict[str, Callable[[pd.Timestamp], str]] = {
    "day": lambda s: f"{s.dayofyear:03d}",
    "month": lambda s: f"{s.month:02d}",
    "season": lambda s: _SEASONS[s.month],
    "tropical-season": lambda s: _TROPICAL.get(s.month, "mjjaso"),
    "climatology-period": lambda s: "climatology-period",
}
_ORDER = {"season": ["djf", "mam", "jja", "son"], "tropical-season": ["ndjfma", "mjjaso"]}


def climatological_normal(data: xr.DataArray, period: str, climatology_period: list | None = None) -> xr.DataArray:
    """The mean per day of year, month, season or over the whole climatology period."""
    require_cube(data)
    dim = temporal_dimension(data, None)
    if period not in _NORMAL_KEYS:
        raise ProcessParameterInvalid(f"'period' must be one of {', '.join(_NORMAL_KEYS)}, got {period!r}.")
    first, last = (int(v) for v in (climatology_period or [1981, 2010]))
    stamps = timestamps(data, dim)
    start, end = pd.Timestamp(year=first, month=1, day=1), pd.Timestamp(year=last + 1, month=1, day=1)
    if period == "season":  # December before the period counts for the first winter, the last December never
        start, end = pd.Timestamp(year=first - 1, month=12, day=1), pd.Timestamp(year=last, month=12, day=1)
    elif period == "tropical-season":
        start, end = pd.Timestamp(year=first - 1, month=11, day=1), pd.Timestamp(year=last, month=11, day=1)
    inside = np.nonzero(np.asarray((stamps >= start) & (stamps < end)))[0]
    keys = [_NORMAL_KEYS[period](s) for s in stamps[inside]]
    present = _ORDER[period] if period in _ORDER else sorted(set(keys))
    present = [k for k in present if k in keys]
    groups = [inside[np.asarray(keys, dtype=object) == key] for key in present]
    values = data if data.dtype.kind == "f" else data.astype(float_dtype_for(data.dtype))
    pieces = [values.isel({dim: g}).mean(dim, skipna=True, keep_attrs=True) for g in groups]
    if not pieces:
        raise NoDataAvailable(f"The cube has no data in the climatology period {first}-{last}.")
    result = xr.concat(pieces, dim=dim, coords="minimal", compat="override").assign_coords({dim: pd.Index(present, dtype=object)})
    result = result.transpose(*data.dims)
    result.attrs = cube_attrs(data)
    return with_types(result, dimension_types(data))


def _normal_key(label: Any, period: str) -> str:
    """The normals' label for a data label: a timestamp's period, or the part of a period label after the year."""
    if period in ("single-period", "climatology-period"):
        return ""
    if isinstance(label, str) and not re.match(r"^\d{4}-\d{2}-\d{2}T", label) and not re.match(r"^\d{4}-\d{2}-\d{2}$", label):
        return label.split("-", 1)[1] if "-" in label and period not in ("year", "decade", "decade-ad") else label
    full = PERIODS[period][0](_instant(label))
    return full if period in ("year", "decade", "decade-ad") else full.split("-", 1)[1]


def anomaly(data: xr.DataArray, normals: xr.DataArray, period: str) -> xr.DataArray:
    require_cube(data)
    require_cube(normals, "normals")
    dim, normal_dim = temporal_dimension(data, None), temporal_dimension(normals, None)
    if period in ("single-period", "climatology-period"):
        if normals.sizes[normal_dim] != 1:
            raise ProcessParameterInvalid(f"For the period '{period}' the normals must have a single label, they have {normals.sizes[normal_dim]}.")
        baseline = normals.isel({normal_dim: 0}, drop=True)
    else:
        keys = [_normal_key(label, period) for label in data.indexes[dim]]
        available = [str(v) for v in normals.indexes[normal_dim]]
        missing = sorted(set(keys) - set(available))
        if missing:
            raise ProcessParameterInvalid(f"The normals have no label(s) {missing[:5]} for the period '{period}' (they have {available[:12]}).")
        positions = [available.index(k) for k in keys]
        baseline = normals.isel({normal_dim: positions}).drop_vars(normal_dim)
        baseline = baseline.rename({normal_dim: dim}) if normal_dim != dim else baseline
        baseline = baseline.assign_coords({dim: data.indexes[dim]})
    baseline = baseline.drop_vars([c for c in baseline.coords if c not in baseline.dims])
    result = data - baseline
    result.attrs = cube_attrs(data)
    return result.transpose(*data.dims)
