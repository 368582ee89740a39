"""Date and time processes: date_between, date_shift, date_difference.

Dates are RFC 3339 strings. A date without a time is midnight UTC; a time zone offset is kept by
``date_shift`` (which answers a date for a date, and a date-time in the input's offset otherwise).
Leap seconds (``23:59:60``) are accepted and never returned.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from terracube.errors import ProcessParameterInvalid
from terracube.processes.arrays import python_scalar

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_ONLY = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_LEAP_SECOND = re.compile(r"T(\d{2}:\d{2}):60")


def parse(value: Any, name: str) -> pd.Timestamp:
    """A date or date-time string as a timestamp (with its offset; a date is midnight UTC)."""
    if not isinstance(value, str):
        raise ProcessParameterInvalid(f"'{name}' must be a date or date-time string, got {value!r}.")
    text, leap = _LEAP_SECOND.sub(r"T\1:59", value), bool(_LEAP_SECOND.search(value))
    try:
        stamp = pd.Timestamp(text)
    except ValueError as error:
        raise ProcessParameterInvalid(f"'{name}' is not an RFC 3339 date or date-time: {value!r}.") from error
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp + pd.Timedelta(seconds=1) if leap else stamp


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_convert("UTC")


def date_between(x: Any, min: Any, max: Any, exclude_max: bool = False) -> bool | None:  # noqa: A002 - the spec's names
    x, low, high = python_scalar(x), python_scalar(min), python_scalar(max)
    if x is None:
        return None
    if all(isinstance(v, str) and _TIME_ONLY.match(v) for v in (x, low, high)):
        x, low, high = (parse(f"1970-01-01T{v}", "x") for v in (x, low, high))
    else:
        x, low, high = _utc(parse(x, "x")), _utc(parse(low, "min")), _utc(parse(high, "max"))
    if low > high:
        return False
    return bool(low <= x and (x < high if exclude_max else x <= high))


_FIXED = {
    "millisecond": pd.Timedelta(milliseconds=1),
    "second": pd.Timedelta(seconds=1),
    "minute": pd.Timedelta(minutes=1),
    "hour": pd.Timedelta(hours=1),
    "day": pd.Timedelta(days=1),
    "week": pd.Timedelta(weeks=1),
}


def _format(stamp: pd.Timestamp, utc_as_z: bool) -> str:
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond or stamp.nanosecond:
        text += f".{stamp.microsecond // 1000:03d}"
    offset = stamp.strftime("%z")
    offset = "Z" if offset in ("+0000", "") and utc_as_z else f"{offset[:3]}:{offset[3:]}"
    return text + offset


def date_shift(date: Any, value: int, unit: str) -> str:
    text = python_scalar(date)
    stamp = parse(text, "date")
    if unit in _FIXED:
        shifted = stamp + int(value) * _FIXED[unit]
    elif unit in ("month", "year"):
        shifted = stamp + pd.DateOffset(months=int(value) * (12 if unit == "year" else 1))
    else:
        raise ProcessParameterInvalid(f"'unit' must be one of {', '.join([*_FIXED, 'month', 'year'])}, got {unit!r}.")
    if _DATE_ONLY.match(text):
        return shifted.strftime("%Y-%m-%d")
    return _format(shifted, utc_as_z=text.endswith(("Z", "z")) or not re.search(r"[+-]\d{2}:?\d{2}$", text))


def date_difference(date1: Any, date2: Any, unit: str = "second") -> float:
    first, second = _utc(parse(python_scalar(date1), "date1")), _utc(parse(python_scalar(date2), "date2"))
    if unit in _FIXED:
        return (second - first) / _FIXED[unit]
    if unit in ("month", "year"):
        months = (second.year - first.year) * 12 + (second.month - first.month)
        anchor = first + pd.DateOffset(months=months)
        # The fraction of the month after the whole months, measured in the month it falls in.
        step = pd.DateOffset(months=1 if second >= anchor else -1)
        rest = (second - anchor) / abs((anchor + step) - anchor)
        total = months + rest
        return total / 12 if unit == "year" else total
    raise ProcessParameterInvalid(f"'unit' must be one of {', '.join([*_FIXED, 'month', 'year'])}, got {unit!r}.")
