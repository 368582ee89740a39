"""The documents about a job: its metadata, its results as a STAC Item, its estimate, its logs.

The results document is built from what the worker recorded when it wrote the files (see
``assets.py``), so answering ``GET /jobs/{id}/results`` never opens a result file. Asset links
are signed and expire; ``GET`` again for fresh ones, as the openEO API says.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from terracube.execute import lazy_results
from terracube.graph.udp import UdpLookup
from terracube.jobs.signing import UrlSigner
from terracube.jobs.store import Job, JobLog
from terracube.processes.env import ProcessEnv

STAC_VERSION = "1.1.0"  # pystac's own; its core schemas ship with it, so results validate offline
EXTENSIONS = {
    "proj": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
}
ITEM_DOCUMENT = "item.json"  # the name the canonical (signed) link of the results document signs


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def job_summary(job: Job, base_url: str) -> dict[str, Any]:
    """A job as listed by ``GET /jobs``: scalar fields only, as the spec recommends."""
    summary: dict[str, Any] = {
        "id": job.id,
        "title": job.title,
        "description": job.description,
        "status": job.status,
        "created": rfc3339(job.created),
        "updated": rfc3339(job.updated),
    }
    if job.progress is not None and job.status not in ("created",):
        summary["progress"] = round(float(job.progress), 1)
    if job.plan is not None:
        summary["plan"] = job.plan
    if job.budget is not None:
        summary["budget"] = job.budget
    summary["costs"] = 0
    return summary


def job_document(job: Job, base_url: str) -> dict[str, Any]:
    """``GET /jobs/{id}``: everything, with links to the logs and (when there are some) results."""
    document = job_summary(job, base_url)
    document["process"] = job.process
    document["log_level"] = job.log_level
    if job.usage:
        document["usage"] = job.usage
    for name in ("queued_at", "started_at", "finished_at"):
        value = getattr(job, name)
        if value is not None:
            document[name.replace("_at", "")] = rfc3339(value)
    if job.options:
        document["job_options"] = job.options
    url = f"{base_url}/jobs/{quote(job.id)}"
    document["links"] = [{"rel": "monitor", "href": f"{url}/logs", "type": "application/json", "title": "Logs"}]
    if job.status == "finished":
        document["links"].append({"rel": "result", "href": f"{url}/results", "type": "application/json", "title": "Results"})
    return document


def log_entry(entry: JobLog) -> dict[str, Any]:
    document: dict[str, Any] = {"id": str(entry.id), "level": entry.level, "message": entry.message, "time": rfc3339(entry.time)}
    if entry.code:
        document["code"] = entry.code
    if entry.node_id:
        document["path"] = [{"node_id": entry.node_id}]
    if entry.data is not None:
        document["data"] = entry.data
    return document


def _union_bbox(assets: list[dict]) -> list[float] | None:
    boxes = [a["bbox_wgs84"] for a in assets if a.get("bbox_wgs84")]
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _polygon(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def asset_url(base_url: str, job_id: str, name: str, signer: UrlSigner) -> str:
    return f"{base_url}/jobs/{quote(job_id)}/results/assets/{quote(name)}?{urlencode(signer.sign(job_id, name))}"


def results_document(job: Job, base_url: str, signer: UrlSigner) -> dict[str, Any]:
    """The STAC Item of a finished job's results."""
    results = job.results or {}
    assets_in = results.get("assets", [])
    assets: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for asset in assets_in:
        entry = {key: value for key, value in asset.items() if key not in ("name", "bbox_wgs84")}
        entry = {key: _json_number(value) for key, value in entry.items()}
        entry["href"] = asset_url(base_url, job.id, asset["name"], signer)
        assets[asset["name"]] = entry
        used |= {prefix for prefix in EXTENSIONS if any(key.startswith(prefix + ":") for key in entry)}
    bbox = _union_bbox(assets_in)
    sources = results.get("derived_from", [])
    times = sorted(s["datetime"] for s in sources if s.get("datetime"))
    expires = datetime.now(timezone.utc) + timedelta(seconds=signer.lifetime)
    properties: dict[str, Any] = {
        "datetime": None if times else rfc3339(job.finished_at or job.updated),
        "title": job.title,
        "description": job.description,
        "created": rfc3339(job.finished_at or job.updated),
        "updated": rfc3339(job.finished_at or job.updated),
        "expires": rfc3339(expires),
        "openeo:status": "finished",
    }
    if times:
        properties["start_datetime"], properties["end_datetime"] = _utc(times[0]), _utc(times[-1])
    epsgs = {a.get("proj:epsg") for a in assets_in if a.get("proj:epsg")}
    if len(epsgs) == 1:
        properties["proj:epsg"] = epsgs.pop()
    url = f"{base_url}/jobs/{quote(job.id)}"
    links = [
        {"rel": "self", "href": f"{url}/results", "type": "application/geo+json"},
        {
            "rel": "canonical",
            "href": f"{url}/results/{ITEM_DOCUMENT}?{urlencode(signer.sign(job.id, ITEM_DOCUMENT))}",
            "type": "application/geo+json",
        },
        {"rel": "job", "href": url, "type": "application/json", "title": "The batch job"},
    ]
    links += [
        {"rel": "derived_from", "href": s["href"], "type": "application/geo+json", "title": f"{s['collection']} source item"}
        for s in sources
    ]
    document: dict[str, Any] = {
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXTENSIONS[prefix] for prefix in sorted(used)],
        "type": "Feature",
        "id": job.id,
        "geometry": _polygon(bbox) if bbox else None,
        "properties": {key: value for key, value in properties.items() if value is not None or key == "datetime"},
        "assets": assets,
        "links": links,
    }
    if bbox:
        document["bbox"] = bbox
    return document


def partial_document(job: Job, base_url: str) -> dict[str, Any]:
    """``?partial=true`` on an unfinished job: a valid STAC Item with its status and no assets yet."""
    return {
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "type": "Feature",
        "id": job.id,
        "geometry": None,
        "properties": {"datetime": rfc3339(job.updated), "title": job.title, "openeo:status": "running" if job.status in ("queued", "running") else job.status},
        "assets": {},
        "links": [{"rel": "self", "href": f"{base_url}/jobs/{quote(job.id)}/results?partial=true", "type": "application/geo+json"}],
    }


def _utc(value: str) -> str:
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return rfc3339(stamp)


def _json_number(value: Any) -> Any:
    """NaN and infinities are not JSON; statistics of an all-nodata band must still serialize."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def estimate(process: dict, env: ProcessEnv, udps: UdpLookup | None = None) -> dict[str, Any]:
    """Size and duration from the lazily evaluated graph: planning only, no pixel is read.

    The size is the uncompressed size of what ``save_result`` would write, an upper bound; the
    duration assumes ~50 MB/s of output on one machine, which is the right order of magnitude
    for the embedded archive and says nothing about a busy cluster.
    """
    outputs = [result.data for result in lazy_results(process, env, udps)]
    size = int(sum(getattr(output, "nbytes", 0) or 0 for output in outputs))
    seconds = max(1, math.ceil(1 + size / 50e6))
    return {
        "costs": 0,
        "size": size,
        "duration": f"PT{seconds}S",
        "downloads_included": None,
        "expires": rfc3339(datetime.now(timezone.utc) + timedelta(days=1)),
    }
