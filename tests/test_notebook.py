"""The tutorial notebook runs top to bottom, offline, so it never rots."""

from pathlib import Path

import nbformat
import rasterio
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "ahr_flood.ipynb"


def test_the_notebook_runs_offline(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TERRACUBE_DATA_DIR", str(data_dir))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    assert "SENTINEL2_L2A" in outputs and "mean NDVI before" in outputs
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the before/after/difference figure was not drawn"
    # The batch job's result is the tutorial's After/openEO.tif, on the same grid as the synchronous download.
    with rasterio.open(tmp_path / "ndvi_before.tif") as before, rasterio.open(tmp_path / "After" / "openEO.tif") as after:
        assert (after.crs, after.transform, after.shape) == (before.crs, before.transform, before.shape)


def test_the_committed_notebook_carries_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
