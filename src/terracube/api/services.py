"""Secondary services (openEO API 1.2): ``/service_types``, ``/services`` and everything under it.

HTTP only: the store (``terracube.services.store.ServiceStore``, in the jobs database) keeps the
services per user; ``terracube.services.tiles`` checks and draws them. The metadata routes are
plain ``def``s (FastAPI runs them in its thread pool). The tiles are in ``api/service_tiles.py``.

A service's ``url`` is where map clients find it: for XYZ the tile template
``<base>/services/{id}/tiles/{z}/{x}/{y}.png``, for WMTS ``<base>/services/{id}/wmts``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from terracube.api.auth import User, current_user
from terracube.api.deps import app_settings, base_url, udp_lookup, user_env
from terracube.api.jobs import checked_metadata
from terracube.api.paging import MAX_INDEX, Page
from terracube.api.processing import json_object
from terracube.api.service_tiles import router as tiles_router
from terracube.api.service_tiles import forget_tiles, service_store
from terracube.errors import BadRequest, OpenEOError, ProcessGraphMissing, ServiceUnsupported, shortened
from terracube.jobs.errors import PropertyNotEditable
from terracube.jobs.results import rfc3339
from terracube.jobs.store import LOG_LEVELS
from terracube.services import tiles
from terracube.services.errors import ServiceConfigInvalid, ServiceLimitExceeded
from terracube.services.model import SERVICE_TYPES, Service
from terracube.services.store import ServiceLog, StoredService, new_service_id

router = APIRouter(tags=["secondary services"])
router.include_router(tiles_router)  # the tiles, public: api/service_tiles.py

EDITABLE = ("title", "description", "process", "enabled", "configuration", "plan", "budget", "log_level")
READ_ONLY = ("id", "type", "url", "attributes", "created", "costs", "usage")
# Changing these changes what the tiles draw: the changed service is checked as a new one is.
DRAWN = ("process", "configuration")
# A PATCH checks the service as it read it; when another change came in between, it reads and checks again.
PATCH_ATTEMPTS = 3


def service_url(base: str, service: Service) -> str:
    prefix = f"{base}/services/{quote(service.id)}"
    return f"{prefix}/wmts" if service.type == "WMTS" else prefix + "/tiles/{z}/{x}/{y}.png"


def service_summary(stored: StoredService, base: str) -> dict[str, Any]:
    """A service as ``GET /services`` lists it: scalar fields only, as the spec recommends."""
    service = stored.service
    summary: dict[str, Any] = {"id": service.id, "url": service_url(base, service), "type": service.type, "enabled": service.enabled}
    # Left out when not given: the spec's schemas say "nullable", which JSON Schema validators (OpenAPI 3.1) ignore.
    summary.update({name: value for name, value in (("title", service.title), ("description", service.description)) if value is not None})
    summary["created"] = rfc3339(service.created)
    if stored.plan is not None:
        summary["plan"] = stored.plan
    if stored.budget is not None:
        summary["budget"] = stored.budget
    summary["costs"] = 0
    return summary


def attributes(request: Request, user: User, service: Service) -> dict[str, Any]:
    """What a map client needs to show the service: its layer's extent, zoom levels and time labels."""
    try:
        layer = tiles.describe_layer(user_env(request, user), service, udp_lookup(request, user))
    except OpenEOError as error:
        # The service was drawable when stored; its data may have gone since. Say so, in its logs too.
        service_store(request.app).add_log(service.id, "warning", f"The layer cannot be described: {error.message}", code=error.code)
        return {}
    return {
        "layers": [{
            "id": service.id, "title": service.title or service.id, "bbox": list(layer.bbox_wgs84), "crs": "EPSG:4326",
            "minzoom": layer.min_zoom, "maxzoom": layer.max_zoom, "times": list(layer.times),
        }],
    }


def service_document(request: Request, user: User, stored: StoredService) -> dict[str, Any]:
    """``GET /services/{id}``: everything, with a link to the logs."""
    base = base_url(request)
    document = service_summary(stored, base)
    document.update(process=stored.service.process, configuration=stored.service.configuration, log_level=stored.log_level)
    document["attributes"] = attributes(request, user, stored.service)
    document["links"] = [
        {"rel": "monitor", "href": f"{base}/services/{quote(stored.service.id)}/logs", "type": "application/json", "title": "Logs"},
    ]
    return document


def log_entry(entry: ServiceLog) -> dict[str, Any]:
    document: dict[str, Any] = {"id": str(entry.id), "level": entry.level, "message": entry.message, "time": rfc3339(entry.time)}
    if entry.code:
        document["code"] = entry.code
    if entry.data is not None:
        document["data"] = entry.data
    return document


# --- checking what a user sends ----------------------------------------------------------------
def service_type(value: Any) -> str:
    """The API's type names, taken case-insensitively as the spec asks, in their canonical spelling."""
    if value is None:
        raise BadRequest(f"A service needs a 'type': one of {', '.join(SERVICE_TYPES)} (GET /service_types).")
    found = next((t for t in SERVICE_TYPES if isinstance(value, str) and value.upper() == t), None)
    if found is None:
        raise ServiceUnsupported(shortened(value))
    return found


def checked_process(process: Any) -> dict:
    if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict) or not process["process_graph"]:
        raise ProcessGraphMissing("A service needs a process: {\"process\": {\"process_graph\": {...}}}.")
    return process


def checked_fields(body: dict) -> dict[str, Any]:
    """The editable properties in ``body``, checked (type and process excepted)."""
    fields = checked_metadata(body)  # as a job's
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise BadRequest("'enabled' must be true or false.")
        fields["enabled"] = body["enabled"]
    if "configuration" in body:
        configuration = body["configuration"]
        if configuration is not None and not isinstance(configuration, dict):
            raise ServiceConfigInvalid("configuration", "it must be a JSON object of rendering settings (GET /service_types lists them).")
        fields["configuration"] = configuration or {}
    if "process" in body:
        fields["process"] = checked_process(body["process"])
    return fields


def split(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the fields of ``Service``, the rest: log_level, plan, budget)."""
    own = {name: value for name, value in fields.items() if name in ("title", "description", "process", "enabled", "configuration")}
    return own, {name: value for name, value in fields.items() if name not in own}


# --- routes --------------------------------------------------------------------------------------
@router.get("/service_types")
def service_types() -> dict:
    return tiles.service_types_document()


@router.post("/services", status_code=201)
def create_service(request: Request, body: dict[str, Any] = Depends(json_object), user: User = Depends(current_user)) -> Response:
    store = service_store(request.app)
    limit = app_settings(request.app).max_services_per_user
    if store.count(user.user_id) >= limit:  # at once, before the graph is checked; add() counts again
        raise ServiceLimitExceeded(limit)
    kind = service_type(body.get("type"))
    fields = checked_fields({"configuration": None, **body, "process": body.get("process")})
    own, extra = split(fields)
    service = Service(id=new_service_id(), user_id=user.user_id, type=kind, **own)
    # A service that cannot be drawn is refused now, with the reason, not tile by tile later.
    tiles.check_service(user_env(request, user), service, udp_lookup(request, user))
    service = store.add(service, **extra, limit=limit)
    store.add_log(service.id, "debug", f"{kind} service created; its process graph can be drawn.")
    location = f"{base_url(request)}/services/{quote(service.id)}"
    return Response(status_code=201, headers={"Location": location, "OpenEO-Identifier": service.id})


@router.get("/services")
def list_services(request: Request, page: Page = Depends(), user: User = Depends(current_user)) -> dict:
    listed, total = service_store(request.app).list(user.user_id, limit=page.limit, offset=page.offset)
    base = base_url(request)
    return {"services": [service_summary(stored, base) for stored in listed], "links": page.links(f"{base}/services", total)}


@router.get("/services/{service_id}")
def describe_service(request: Request, service_id: str, user: User = Depends(current_user)) -> dict:
    return service_document(request, user, service_store(request.app).get(user.user_id, service_id))


@router.patch("/services/{service_id}", status_code=204)
def update_service(request: Request, service_id: str, body: dict[str, Any] = Depends(json_object), user: User = Depends(current_user)) -> Response:
    store = service_store(request.app)
    for _ in range(PATCH_ATTEMPTS):
        stored = store.get(user.user_id, service_id)  # first: another user's id answers 404 whatever the body
        for name in body:
            if name in READ_ONLY:
                raise PropertyNotEditable(name)
        if not any(name in body for name in EDITABLE):
            raise OpenEOError(f"No data specified to be updated: send at least one of {', '.join(EDITABLE)}.", code="NoDataForUpdate", status=400)
        fields = checked_fields(body)
        own, _ = split(fields)
        changed = replace(stored.service, **own)
        if any(name in fields for name in DRAWN):
            tiles.check_service(user_env(request, user), changed, udp_lookup(request, user))
        updated = store.update(user.user_id, service_id, stored.service.version, **fields)
        if updated is not None:
            forget_tiles(request.app, service_id, keep_version=updated.version)  # the older versions' tiles are never served again
            store.add_log(service_id, "info", f"Version {updated.version}: changed {', '.join(sorted(fields))}.")
            return Response(status_code=204)
    raise OpenEOError("The service is being changed by another request at the same time; please try again.", code="ServiceLocked", status=409)


@router.delete("/services/{service_id}", status_code=204)
def delete_service(request: Request, service_id: str, user: User = Depends(current_user)) -> Response:
    service_store(request.app).delete(user.user_id, service_id)
    forget_tiles(request.app, service_id)  # its tiles stop at once, and go from the cache
    return Response(status_code=204)


@router.get("/services/{service_id}/logs")
def service_logs(
    request: Request,
    service_id: str,
    offset: Optional[str] = None,
    level: Optional[str] = None,
    limit: Optional[int] = Query(None, ge=1, le=MAX_INDEX),
    user: User = Depends(current_user),
) -> dict:
    store = service_store(request.app)
    stored = store.get(user.user_id, service_id)
    if offset and offset.strip().isdigit() and int(offset) > MAX_INDEX:
        raise BadRequest(f"'offset' must be a log entry id, at most {MAX_INDEX}.")
    if level not in (None, "", *LOG_LEVELS):
        raise BadRequest(f"'level' must be one of {', '.join(LOG_LEVELS)}.")
    # The effective level is the higher of the service's log_level and the one asked for.
    effective = max(stored.log_level, level or "debug", key=LOG_LEVELS.index)
    entries = store.logs(service_id, offset=offset, level=effective, limit=limit)
    links = []
    if limit is not None and len(entries) == limit:
        query = urlencode({"offset": entries[-1].id, "limit": limit, **({"level": level} if level else {})})
        links.append({"rel": "next", "href": f"{base_url(request)}/services/{quote(service_id)}/logs?{query}", "type": "application/json"})
    return {"level": effective, "logs": [log_entry(entry) for entry in entries], "links": links}
