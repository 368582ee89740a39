"""A secondary service as every part of the services room sees it: the store, the API and the tiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SERVICE_TYPES = ("XYZ", "WMTS")


@dataclass(frozen=True)
class Service:
    id: str  # unguessable (it is the tiles' only credential): secrets.token_urlsafe
    user_id: str  # the owner; every lookup but the tiles' is by owner and id
    type: str  # one of SERVICE_TYPES
    process: dict  # the process document ({"process_graph": ..., maybe "parameters"}) as the user sent it
    configuration: dict[str, Any] = field(default_factory=dict)  # rendering options (docs/services.md)
    title: str | None = None
    description: str | None = None
    enabled: bool = True
    created: datetime | None = None
    version: int = 1  # bumped by every change (PATCH), so cached tiles of an older version are never served
