"""The flood analysis as an openEO process graph, so any backend can run it unchanged.

One graph per period: load B04/B08 (and SCL), mask clouds and shadows with SCL, NDVI, mean over
time, save as GeoTIFF. ``mask_clouds=False`` gives the tutorial's graph exactly.
"""

from __future__ import annotations

# Scene classification classes a careful user masks: cloud shadow, cloud medium/high probability, thin cirrus.
SCL_MASKED_CLASSES = (3, 8, 9, 10)


def _callback(nodes: dict) -> dict:
    return {"process_graph": nodes}


def _mean_reducer() -> dict:
    return _callback({"mean": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}})


def _cloud_reducer() -> dict:
    """Over the bands dimension: true where SCL is one of the masked classes."""
    nodes: dict = {"scl": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "SCL"}}}
    previous = None
    for value in SCL_MASKED_CLASSES:
        nodes[f"is{value}"] = {"process_id": "eq", "arguments": {"x": {"from_node": "scl"}, "y": value}}
        if previous is None:
            previous = f"is{value}"
        else:
            nodes[f"or{value}"] = {"process_id": "or", "arguments": {"x": {"from_node": previous}, "y": {"from_node": f"is{value}"}}}
            previous = f"or{value}"
    nodes[previous]["result"] = True
    return _callback(nodes)


def ndvi_graph(collection: str, bbox: dict, period: list[str], mask_clouds: bool = True) -> dict:
    bands = ["B04", "B08", "SCL"] if mask_clouds else ["B04", "B08"]
    nodes: dict = {
        "load": {
            "process_id": "load_collection",
            "arguments": {"id": collection, "spatial_extent": bbox, "temporal_extent": list(period), "bands": bands},
        }
    }
    source = "load"
    if mask_clouds:
        nodes["clouds"] = {
            "process_id": "reduce_dimension",
            "arguments": {"data": {"from_node": "load"}, "dimension": "bands", "reducer": _cloud_reducer()},
        }
        nodes["reflectance"] = {"process_id": "filter_bands", "arguments": {"data": {"from_node": "load"}, "bands": ["B04", "B08"]}}
        nodes["masked"] = {
            "process_id": "mask",
            "arguments": {"data": {"from_node": "reflectance"}, "mask": {"from_node": "clouds"}},
        }
        source = "masked"
    nodes["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": source}, "nir": "B08", "red": "B04"}}
    nodes["mean"] = {
        "process_id": "reduce_dimension",
        "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t", "reducer": _mean_reducer()},
    }
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}, "result": True}
    return {"process_graph": nodes}
