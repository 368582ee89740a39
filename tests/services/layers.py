"""The process graphs the services tests draw: the NDVI of the Ahr valley after the flood, as a map layer."""

from __future__ import annotations

from tests.conftest import AFTER

# A tile of the embedded sample archive (Ahr valley, around Ahrweiler), zoom 12, as x and y.
AHR_TILE = (12, 2128, 1379)


def ndvi_layer() -> dict:
    """No spatial extent: the tile being drawn gives it."""
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "SENTINEL2_L2A", "spatial_extent": None, "temporal_extent": AFTER, "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}, "result": True},
    }}


def tile_path(service_id: str, z: int, x: int, y: int, extension: str = "png") -> str:
    return f"/services/{service_id}/tiles/{z}/{x}/{y}.{extension}"
