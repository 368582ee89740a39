"""Process graphs the jobs tests run: the tutorial's, a slow one, a failing one."""

from __future__ import annotations

from tests.conftest import AFTER
from tests.test_tutorial_engine import tutorial_graph


def tutorial(period=AFTER) -> dict:
    return tutorial_graph(period)


def slow(bands: int = 12) -> dict:
    """The median of every scene of the summer over the whole archive: ~30 s with 12 bands on 2 cores."""
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"][:bands]
    return {
        "process_graph": {
            "load": {
                "process_id": "load_collection",
                "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": None, "temporal_extent": ["2021-06-01", "2021-09-01"], "bands": names},
            },
            "median": {
                "process_id": "reduce_dimension",
                "arguments": {
                    "data": {"from_node": "load"},
                    "dimension": "t",
                    "reducer": {"process_graph": {"m": {"process_id": "median", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}},
                },
            },
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "median"}, "format": "GTiff"}, "result": True},
        }
    }


def no_data() -> dict:
    """Valid, but no scene falls in the window: fails at run time with NoDataAvailable."""
    return tutorial_graph(["2030-01-01", "2030-01-02"])
