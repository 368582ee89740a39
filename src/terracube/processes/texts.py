"""Text processes: text_begins, text_ends, text_contains, text_find, text_concat.

No-data (null) passes through. Case-insensitive comparisons use Unicode case folding, so ``Ä``
matches ``ä`` and ``ß`` matches ``ss``; ``text_find`` folds only where that keeps positions.
"""

from __future__ import annotations

import json
import math
from typing import Any

from terracube.errors import ProcessParameterInvalid
from terracube.processes.arrays import python_scalar


def _text(value: Any, name: str) -> str | None:
    value = python_scalar(value)
    if value is None or isinstance(value, str):
        return value
    raise ProcessParameterInvalid(f"'{name}' must be a text (string), got {type(value).__name__} {value!r}.")


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def text_begins(data: Any, pattern: str, case_sensitive: bool = True) -> bool | None:
    data = _text(data, "data")
    if data is None:
        return None
    return _fold(data, case_sensitive).startswith(_fold(_text(pattern, "pattern") or "", case_sensitive))


def text_ends(data: Any, pattern: str, case_sensitive: bool = True) -> bool | None:
    data = _text(data, "data")
    if data is None:
        return None
    return _fold(data, case_sensitive).endswith(_fold(_text(pattern, "pattern") or "", case_sensitive))


def text_contains(data: Any, pattern: str, case_sensitive: bool = True) -> bool | None:
    data = _text(data, "data")
    if data is None:
        return None
    return _fold(_text(pattern, "pattern") or "", case_sensitive) in _fold(data, case_sensitive)


def text_find(data: Any, pattern: str, case_sensitive: bool = True) -> int | None:
    data = _text(data, "data")
    if data is None:
        return None
    pattern = _text(pattern, "pattern") or ""
    if not case_sensitive:
        # Case folding may change lengths (ß -> ss); positions must stay those of the original text.
        folded = data.casefold()
        data, pattern = (folded, pattern.casefold()) if len(folded) == len(data) else (data.lower(), pattern.lower())
    position = data.find(pattern)
    return position if position >= 0 else None


def _as_text(value: Any) -> str:
    """The lower-case text representation the spec asks for: null, true, false, 1, -1.5."""
    value = python_scalar(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return str(value)


def text_concat(data: list, separator: Any = "") -> str:
    return _as_text(separator).join(_as_text(value) for value in data) if data else ""
