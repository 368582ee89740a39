"""PLACEHOLDER, replaced at merge by the tiles helper's real module (branch helper-tiles).

Only the interface the services API codes against, with the least behaviour that lets the API's
own tests run: the graph is validated as a job's is, and every tile is a transparent PNG (or a
white JPEG). Nothing here draws data. Do not build on it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

from terracube.errors import OpenEOError
from terracube.execute import check_process
from terracube.graph.udp import UdpLookup
from terracube.processes.env import ProcessEnv
from terracube.services.model import Service


def service_types_document() -> dict:
    """The body of GET /service_types (XYZ and WMTS)."""
    return {
        "XYZ": {"title": "XYZ tiles (placeholder)", "configuration": {}, "process_parameters": []},
        "WMTS": {"title": "OGC WMTS 1.0.0 (placeholder)", "configuration": {}, "process_parameters": []},
    }


def check_service(env: ProcessEnv, service: Service, udps: UdpLookup | None = None) -> None:
    """Raise an OpenEOError if the service cannot be drawn."""
    check_process(service.process, env, udps)


@dataclass(frozen=True)
class Tile:
    content: bytes
    media_type: str
    etag: str


def render_tile(
    env: ProcessEnv, service: Service, z: int, x: int, y: int, *, options: Mapping[str, str] = {}, time: str | None = None,
    udps: UdpLookup | None = None,
) -> Tile:
    """An empty tile: transparent PNG, or white JPEG for ``options["format"] == "jpeg"``."""
    import matplotlib
    from PIL import Image

    colormap = options.get("colormap", service.configuration.get("colormap"))
    if colormap is not None and colormap not in matplotlib.colormaps:
        raise OpenEOError(f"The value passed for the service parameter 'colormap' is invalid: unknown colormap {colormap!r}.", code="ServiceConfigInvalid", status=400)
    if z > 22:
        raise OpenEOError(f"Zoom {z} is beyond this placeholder's limit of 22.", code="ServiceConfigInvalid", status=400)
    jpeg = options.get("format") == "jpeg"
    image = Image.new("RGB", (256, 256), "white") if jpeg else Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if jpeg else "PNG")
    key = json.dumps([service.id, service.version, z, x, y, sorted(options.items()), time])
    return Tile(buffer.getvalue(), "image/jpeg" if jpeg else "image/png", hashlib.sha256(key.encode()).hexdigest()[:32])


@dataclass(frozen=True)
class Layer:
    bbox_wgs84: tuple[float, float, float, float]
    times: list[str]
    min_zoom: int
    max_zoom: int


def describe_layer(env: ProcessEnv, service: Service, udps: UdpLookup | None = None) -> Layer:
    return Layer((-180.0, -85.0511287798066, 180.0, 85.0511287798066), [], 0, 22)
