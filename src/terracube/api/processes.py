"""``/processes``: exactly what the registry implements, each with its official spec."""

from __future__ import annotations

from fastapi import APIRouter

from terracube.processes.registry import default_registry

router = APIRouter()


@router.get("/processes", tags=["processes"])
def processes() -> dict:
    return {"processes": [definition.spec for definition in default_registry()], "links": []}
