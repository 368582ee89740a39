"""The official openEO process test cases: where they are, and one ``Case`` per test.

The cases live in the openeo-processes repository: ``tests/<process>.json5`` next to the specs
(``<process>.json`` for stable processes, ``proposals/<process>.json`` for experimental ones). The
runner reads whatever is there, so new official cases are picked up without code changes. The
checkout is found through ``TERRACUBE_OPENEO_PROCESSES``, else ``shared/openeo-processes`` beside
(or above) the repository, as CI clones it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

ENVIRONMENT_VARIABLE = "TERRACUBE_OPENEO_PROCESSES"


class MissingAsset(Exception):
    """A case refers to a file the suite does not ship."""


def find_checkout(start: Path | None = None) -> Path | None:
    """The openeo-processes checkout: the environment variable, else ``shared/openeo-processes`` up the tree."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured)
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        for candidate in (parent / "shared" / "openeo-processes", parent / "openeo-processes"):
            if (candidate / "tests").is_dir():
                return candidate
    return None


def _as_json(text: str) -> str:
    """JSON5 as JSON, for the subset the suite uses: comments and trailing commas removed.

    NaN and Infinity stay, Python's json reads them. Anything else JSON5 allows (unquoted keys,
    single quotes, hexadecimal numbers) makes ``json.loads`` fail, and the real JSON5 parser runs.
    """
    out: list[str] = []
    i, n = 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
        elif c == '"':
            quote = c
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i)
            i = n if i < 0 else i + 2
        elif c in "]}":
            # Drop a trailing comma before a closing bracket.
            j = len(out) - 1
            while j >= 0 and out[j].isspace():
                j -= 1
            if j >= 0 and out[j] == ",":
                del out[j]
            out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _load(path: Path, mtime: float) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(_as_json(text))
    except ValueError:
        pass
    try:
        import json5
    except ImportError as error:  # pragma: no cover - json5 is in the test extra
        raise RuntimeError("The conformance runner needs the 'json5' package (pip install terracube[test]).") from error
    return json5.loads(text)


def load_json5(path: Path) -> Any:
    """A JSON5 file's content (read once per run: assets are shared by many cases); don't mutate it."""
    return _load(Path(path), Path(path).stat().st_mtime)


def resolve_refs(value: Any, base: Path) -> Any:
    """Inline ``{"$ref": "assets/..."}``: JSON5 documents as values, other files (WKT2) as text."""
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            reference = value["$ref"]
            path = base / reference
            if reference.startswith(("http://", "https://")) or not path.is_file():
                raise MissingAsset(reference)
            return resolve_refs(load_json5(path), base) if path.suffix in (".json5", ".json") else path.read_text(encoding="utf-8")
        return {k: resolve_refs(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, base) for v in value]
    return value


@dataclass(frozen=True)
class Case:
    """One official test case: ``process_id`` and its position in the file identify it."""

    process_id: str
    index: int
    document: dict = field(repr=False, compare=False)
    stable: bool = True
    level: str | None = None
    experimental: bool = False
    base: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.process_id}#{self.index}"

    @property
    def arguments(self) -> dict:
        """The arguments with ``$ref`` files inlined (``MissingAsset`` when one is not shipped)."""
        return resolve_refs(self.document.get("arguments", {}), self.base)

    @property
    def expects_return(self) -> bool:
        return "returns" in self.document

    @property
    def returns(self) -> Any:
        return resolve_refs(self.document["returns"], self.base)

    @property
    def throws(self) -> str | bool | None:
        return self.document.get("throws")

    @property
    def delta(self) -> float:
        return float(self.document.get("delta", 1e-10))

    @property
    def required(self) -> list[str]:
        """Other processes the case calls (in callbacks), as the case declares them."""
        return list(self.document.get("required", []))


class Suite:
    """The official cases of one openeo-processes checkout."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.tests = self.root / "tests"

    @classmethod
    def find(cls) -> "Suite":
        root = find_checkout()
        if root is None:
            raise FileNotFoundError(
                f"No openeo-processes checkout found: set {ENVIRONMENT_VARIABLE} to the directory holding tests/."
            )
        return cls(root)

    def is_stable(self, process_id: str) -> bool:
        """A stable process has its spec at the top of the repository; proposals live in proposals/."""
        return (self.root / f"{process_id}.json").is_file()

    def spec_path(self, process_id: str) -> Path | None:
        for candidate in (self.root / f"{process_id}.json", self.root / "proposals" / f"{process_id}.json"):
            if candidate.is_file():
                return candidate
        return None

    def process_ids(self) -> list[str]:
        return sorted(path.name[: -len(".json5")] for path in self.tests.glob("*.json5"))

    def cases(self, processes: set[str] | None = None) -> Iterator[Case]:
        for process_id in self.process_ids():
            if processes and process_id not in processes:
                continue
            document = load_json5(self.tests / f"{process_id}.json5")
            for index, case in enumerate(document.get("tests", [])):
                yield Case(
                    process_id=process_id,
                    index=index,
                    document=case,
                    stable=self.is_stable(process_id),
                    level=case.get("level") or document.get("level"),
                    experimental=bool(document.get("experimental", False)),
                    base=self.tests,
                )
