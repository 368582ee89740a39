"""User-defined processes as the graph room sees them: stored process documents found by id.

Where they are stored is not this room's business: the evaluator and the validator take a lookup
``(process_id, namespace) -> document or None``. A user's processes live in the namespace
``user``; a node without a namespace finds a predefined process first, then a user's process.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from terracube.graph.model import is_callback, iter_references

UdpLookup = Callable[[str, "str | None"], "dict | None"]

# The namespaces in which a node may name a user-defined process.
USER_NAMESPACES = (None, "user")


def referenced_processes(document: Any) -> Iterator[tuple[str, str | None]]:
    """``(process_id, namespace)`` of every node of a process, child graphs (callbacks) included.

    Works on raw JSON, so it can tell which stored processes a graph needs before anything is
    parsed (a batch job takes them along to the Dask worker, which has no database).
    """
    if not isinstance(document, dict):
        return
    if isinstance(document.get("process"), dict):
        document = document["process"]
    graph = document.get("process_graph", document)
    if not isinstance(graph, dict):
        return
    for node in graph.values():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            continue
        yield node["process_id"], node.get("namespace")
        for item in iter_references(node.get("arguments")):
            if is_callback(item):
                yield from referenced_processes(item)


def lookup_in(documents: Mapping[str, dict] | None) -> UdpLookup | None:
    """A lookup over processes already fetched (``{id: document}``), e.g. a batch job's snapshot."""
    if not documents:
        return None

    def lookup(process_id: str, namespace: str | None) -> dict | None:
        return documents.get(process_id) if namespace in USER_NAMESPACES else None

    return lookup
