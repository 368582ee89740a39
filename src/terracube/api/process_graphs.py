"""User-defined processes (openEO API 1.2): ``/process_graphs`` and ``/process_graphs/{id}``.

HTTP only: the store (``app.state.udps``, a ``terracube.jobs.udp_store.UdpStore``) keeps them
per user in the jobs database; the graph room validates them. A stored process is called from
any graph by its id, with namespace ``user`` (or none), in ``/result``, ``/validation`` and jobs.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from terracube.api.auth import User, current_user
from terracube.api.deps import base_url, udp_lookup, udp_store, user_env
from terracube.api.paging import Page
from terracube.api.processing import json_body
from terracube.errors import ECHO_LENGTH, OpenEOError, ProcessGraphInvalid, ProcessGraphMissing, shortened
from terracube.execute import check_process
from terracube.jobs.errors import ProcessGraphIdInvalid, ProcessGraphNotFound

router = APIRouter(tags=["user-defined processes"])

# The spec's pattern ``^\w+$``, read as JSON Schema reads it (ASCII), and as long as the column.
PROCESS_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def store_of(request: Request):
    store = udp_store(request.app)
    if store is None:
        raise OpenEOError("User-defined processes are not available on this server.", code="FeatureUnsupported", status=501)
    return store


def checked_id(process_graph_id: str) -> str:
    if not PROCESS_ID.fullmatch(process_graph_id):
        raise ProcessGraphIdInvalid(shortened(process_graph_id))
    return process_graph_id


def known_id(process_graph_id: str) -> str:
    """An id to look up: one longer than any stored one is not found, and the message echoes it cut short."""
    if len(process_graph_id) > ECHO_LENGTH and not PROCESS_ID.fullmatch(process_graph_id):
        raise ProcessGraphNotFound(shortened(process_graph_id))
    return process_graph_id


def _check_parameters(parameters: Any) -> None:
    if parameters is None:
        return
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise ProcessGraphInvalid("'parameters' must be a list of objects, each with a 'name'.")
    names = [p.get("name") for p in parameters]
    for name in names:
        if not isinstance(name, str) or not PROCESS_ID.fullmatch(name):
            raise ProcessGraphInvalid(f"Parameter name {name!r} is invalid: use letters, digits and underscores.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProcessGraphInvalid(f"Parameter '{duplicates[0]}' is declared more than once.")


def _summary(document: dict) -> dict:
    """What the listing shows of a process: everything but its graph (the spec makes that optional there)."""
    return {key: value for key, value in document.items() if key != "process_graph"}


@router.get("/process_graphs")
def list_process_graphs(request: Request, page: Page = Depends(), user: User = Depends(current_user)) -> dict:
    documents, total = store_of(request).list(user.user_id, limit=page.limit, offset=page.offset)
    links = page.links(f"{base_url(request)}/process_graphs", total)
    return {"processes": [_summary(d) for d in documents], "links": links}


@router.get("/process_graphs/{process_graph_id}")
def describe_process_graph(request: Request, process_graph_id: str, user: User = Depends(current_user)) -> dict:
    return store_of(request).get(user.user_id, known_id(process_graph_id))


@router.put("/process_graphs/{process_graph_id}")
def store_process_graph(
    request: Request, process_graph_id: str, body: Any = Depends(json_body), user: User = Depends(current_user)
) -> Response:
    """Store or replace a process; its graph is validated now, as a job's is, so a broken one is never stored."""
    store = store_of(request)
    checked_id(process_graph_id)
    if not isinstance(body, dict):
        raise ProcessGraphMissing("Send the process as a JSON object: {\"process_graph\": {...}, \"parameters\": [...]}.")
    if not isinstance(body.get("process_graph"), dict) or not body["process_graph"]:
        raise ProcessGraphMissing("A user-defined process needs a 'process_graph' with at least one node.")
    _check_parameters(body.get("parameters"))
    # The URL's id wins over one in the body (API 1.2, PUT /process_graphs/{id}: "the value for `id`
    # gets replaced with the value from the `process_graph_id` parameter in the path").
    document = {**body, "id": process_graph_id}
    check_process(document, user_env(request, user), udp_lookup(request, user))
    store.put(user.user_id, process_graph_id, document)
    return Response(status_code=200)


@router.delete("/process_graphs/{process_graph_id}", status_code=204)
def delete_process_graph(request: Request, process_graph_id: str, user: User = Depends(current_user)) -> Response:
    store_of(request).delete(user.user_id, known_id(process_graph_id))
    return Response(status_code=204)
