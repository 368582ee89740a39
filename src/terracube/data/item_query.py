"""The parameters of a STAC API item search (``GET /collections/{id}/items``), read and checked.

``bbox`` (west,south,east,north in WGS84), ``datetime`` (an RFC 3339 instant or an interval with
``..`` or empty open ends), ``limit``, and a filter on cloud cover as the STAC API's filter
extension writes it (CQL2 text ``eo:cloud_cover<=20``, or CQL2 JSON) or as its older ``query``
extension (``{"eo:cloud_cover": {"lte": 20}}``). Every value has a size limit, and every problem is
a 400 that says what was expected. The conditions are ``properties.Condition``s, the same ones
``load_collection(properties=...)`` sends to a STAC API, so both searches speak one language.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from typing import Any

from terracube.data.properties import Condition
from terracube.errors import BadRequest

DEFAULT_LIMIT = 10
# OGC API Features: a larger limit is not an error, the server answers its maximum.
MAX_LIMIT = 1000
MAX_TEXT = 2000  # characters of a bbox, datetime, filter or query parameter
# What a filter may test: the cloud cover, the one property a search for scenes needs.
FILTER_PROPERTIES = ("eo:cloud_cover",)
FILTER_LANGUAGES = ("cql2-text", "cql2-json")
SUPPORTED = (
    "supported: comparisons (<, <=, >, >=, =, <>) of eo:cloud_cover with a number, joined by AND, "
    "as filter-lang=cql2-text (eo:cloud_cover<=20) or cql2-json "
    '({"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]}), or query={"eo:cloud_cover": {"lte": 20}}'
)
_CQL2_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "eq", "<>": "neq"}
_QUERY_OPS = ("lt", "lte", "gt", "gte", "eq", "neq")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARISON = re.compile(rf'^\s*("?)([A-Za-z_][\w:.\-]*)\1\s*(<=|>=|<>|<|>|=)\s*({_NUMBER})\s*$')


@dataclass(frozen=True)
class ItemQuery:
    """One search: ``end`` is inclusive, as STAC's datetime intervals are."""

    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    conditions: tuple[Condition, ...] = field(default_factory=tuple)
    limit: int = DEFAULT_LIMIT

    @property
    def datetime_text(self) -> str | None:
        """The interval as a STAC API search takes it (``2021-06-01T00:00:00Z/..``), None without one."""
        if self.start is None and self.end is None:
            return None
        return f"{_iso(self.start)}/{_iso(self.end)}"


def item_query(bbox: str | None = None, datetime_: str | None = None, limit: int | None = None,
               filter_: str | None = None, filter_lang: str | None = None, query: str | None = None,
               filter_crs: str | None = None) -> ItemQuery:
    """Every parameter read and checked; the first problem is a 400 naming the parameter."""
    start, end = parse_datetime(datetime_) if datetime_ not in (None, "") else (None, None)
    conditions = parse_filter(filter_, filter_lang, filter_crs) if filter_ not in (None, "") else []
    if query not in (None, ""):
        conditions += parse_query(query)
    return ItemQuery(parse_bbox(bbox) if bbox not in (None, "") else None, start, end, tuple(conditions), parse_limit(limit))


def parse_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise BadRequest(f"limit must be at least 1 (it is the number of items on a page, {MAX_LIMIT} at most), not {limit}.")
    return min(limit, MAX_LIMIT)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``west,south,east,north`` in WGS84 (a 3D box's heights are ignored); west > east crosses the antimeridian."""
    parts = _text("bbox", text).split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise BadRequest(f"bbox must be four numbers west,south,east,north in WGS84 degrees, not '{_echo(text)}'.") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise BadRequest(f"bbox must be four numbers west,south,east,north in WGS84 degrees, not '{_echo(text)}'.")
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadRequest(f"bbox: longitudes lie between -180 and 180, not {west:g} and {east:g}.")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise BadRequest(f"bbox: latitudes lie between -90 and 90, not {south:g} and {north:g}.")
    if south > north:
        raise BadRequest(f"bbox: the south edge ({south:g}) lies north of the north edge ({north:g}); the order is west,south,east,north.")
    return west, south, east, north


def parse_datetime(text: str) -> tuple[datetime | None, datetime | None]:
    """An instant or an interval ``start/end``, either end open (``..`` or empty), both ends included.

    A date alone stands for its whole day (UTC), as pystac-client reads one; a time without an
    offset is UTC.
    """
    text = _text("datetime", text).strip()
    if "/" not in text:
        if text == "..":
            raise BadRequest("datetime: '..' needs an interval, e.g. '2021-06-01T00:00:00Z/..'.")
        return _moment(text, first=True), _moment(text, first=False)
    first, _, last = text.partition("/")
    if "/" in last:
        raise BadRequest(f"datetime must be an instant or one interval start/end, not '{_echo(text)}'.")
    start = None if first in ("", "..") else _moment(first, first=True)
    end = None if last in ("", "..") else _moment(last, first=False)
    if start is None and end is None:
        raise BadRequest("datetime: an interval open at both ends ('../..') is not allowed; leave datetime out to search all times.")
    if start is not None and end is not None and start > end:
        raise BadRequest(f"datetime: the interval's start {_iso(start)} is after its end {_iso(end)}.")
    return start, end


def _moment(text: str, first: bool) -> datetime:
    """An RFC 3339 date-time; a date alone is its day's first (``first``) or last instant."""
    value = text.strip().upper()
    try:
        if "T" not in value and len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d")
            when = day if first else datetime.combine(day.date(), time.max)
        else:
            when = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"datetime: '{_echo(text)}' is not an RFC 3339 date-time (e.g. 2021-06-01T10:30:00Z), a date (2021-06-01) or '..'."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:  # year 1 with a positive offset
        raise BadRequest(f"datetime: '{_echo(text)}' is out of range.") from None


def parse_filter(text: str, language: str | None, crs: str | None = None) -> list[Condition]:
    """A CQL2 filter (text or JSON) on the cloud cover, as conditions; anything else is a 400 naming what works."""
    text = _text("filter", text)
    if crs not in (None, "", "http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
        raise BadRequest(f"filter-crs '{_echo(crs)}' is not supported: filters here test no geometry (only CRS84 is accepted).")
    language = (language or "").strip().lower()
    if language == "":
        # The filter extension's default for GET is cql2-text; a JSON object can only be cql2-json.
        language = "cql2-json" if text.lstrip().startswith("{") else "cql2-text"
    if language not in FILTER_LANGUAGES:
        raise BadRequest(f"filter-lang '{_echo(language)}' is not supported: use {' or '.join(FILTER_LANGUAGES)}; {SUPPORTED}.")
    if language == "cql2-json":
        try:
            expression = json.loads(text)
        except ValueError:
            raise BadRequest(f"filter is not valid JSON (filter-lang=cql2-json); {SUPPORTED}.") from None
        return _cql2_json(expression)
    conditions = []
    for clause in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = _COMPARISON.match(clause)
        if match is None:
            raise BadRequest(f"filter '{_echo(text)}' is not supported here; {SUPPORTED}.")
        _, name, op, number = match.groups()
        conditions.append(_condition(name, _CQL2_OPS[op], float(number)))
    return conditions


def _cql2_json(expression: Any, depth: int = 0) -> list[Condition]:
    if depth > 10 or not isinstance(expression, dict) or not isinstance(expression.get("args"), list):
        raise BadRequest(f"filter (cql2-json) is not supported here; {SUPPORTED}.")
    op, args = str(expression.get("op", "")).lower(), expression["args"]
    if op == "and":
        return [condition for arg in args for condition in _cql2_json(arg, depth + 1)]
    if op in _CQL2_OPS and len(args) == 2 and isinstance(args[0], dict) and set(args[0]) == {"property"}:
        value = args[1]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return [_condition(str(args[0]["property"]), _CQL2_OPS[op], value)]
    raise BadRequest(f"filter (cql2-json) with op '{_echo(op)}' is not supported here; {SUPPORTED}.")


def parse_query(text: str) -> list[Condition]:
    """The STAC API query extension: ``{"eo:cloud_cover": {"lte": 20}}``."""
    try:
        document = json.loads(_text("query", text))
    except ValueError:
        raise BadRequest(f'query must be a JSON object like {{"eo:cloud_cover": {{"lte": 20}}}}; {SUPPORTED}.') from None
    if not isinstance(document, dict):
        raise BadRequest(f'query must be a JSON object like {{"eo:cloud_cover": {{"lte": 20}}}}; {SUPPORTED}.')
    conditions = []
    for name, ops in document.items():
        if not isinstance(ops, dict) or not ops:
            raise BadRequest(f"query: '{_echo(name)}' needs an object of operators ({', '.join(_QUERY_OPS)}) and numbers.")
        for op, value in ops.items():
            if op not in _QUERY_OPS or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BadRequest(f"query: '{_echo(op)}: {_echo(value)}' on '{_echo(name)}' is not supported; {SUPPORTED}.")
            conditions.append(_condition(name, op, value))
    return conditions


def _condition(name: str, op: str, value: float) -> Condition:
    if name not in FILTER_PROPERTIES:
        raise BadRequest(f"Filtering on '{_echo(name)}' is not supported; {SUPPORTED}.")
    return Condition(name, op, value)


_TESTS = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b,
          "gte": lambda a, b: a >= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}


def satisfies(properties: dict[str, Any], conditions: tuple[Condition, ...] | list[Condition]) -> bool:
    """Every condition holds for the item's properties; an item without the property never matches."""
    for condition in conditions:
        value = properties.get(condition.property)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _TESTS[condition.op](value, condition.value):
            return False
    return True


def _text(name: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_TEXT} characters.")
    return text


def _echo(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _iso(when: datetime | None) -> str:
    if when is None:
        return ".."
    text = when.astimezone(timezone.utc).isoformat(timespec="microseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")

