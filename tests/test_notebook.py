"""The tutorial notebook runs top to bottom, offline, so it never rots: login cell included, in
laptop mode and against a server with accounts (as a client made by ``terracube clients add``)."""

import os
from pathlib import Path

import nbformat
import pytest
import rasterio
from nbclient import NotebookClient

from tests.auth.conftest import PASSWORDS, client_credentials, terracube

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "ahr_flood.ipynb"
AUTH_VARIABLES = ("OPENEO_AUTH_METHOD", "OPENEO_AUTH_CLIENT_ID", "OPENEO_AUTH_CLIENT_SECRET", "OPENEO_AUTH_PROVIDER_ID")


@pytest.fixture
def server_env(data_dir, tmp_path, monkeypatch) -> dict[str, str]:
    """The notebook's own server gets a data directory of its own (database, keys, results), reading
    the shared sample archive through a link, and the official client a refresh token store of its own."""
    own = tmp_path / "server"
    own.mkdir()
    (own / "sample").symlink_to(data_dir / "sample", target_is_directory=True)
    env = {"TERRACUBE_DATA_DIR": str(own), "TERRACUBE_DATABASE_URL": f"sqlite:///{own / 'terracube.db'}",
           "TERRACUBE_RESULTS_ROOT": str(own / "results"), "OPENEO_CONFIG_HOME": str(tmp_path / "openeo-client")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the notebook's kernel, and the server it starts, inherit them
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return env


def run_notebook(workdir: Path) -> str:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    assert "SENTINEL2_L2A" in outputs and "mean NDVI before" in outputs
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the before/after/difference figure was not drawn"
    # The batch job's result is the tutorial's After/openEO.tif, on the same grid as the synchronous download.
    with rasterio.open(workdir / "ndvi_before.tif") as before, rasterio.open(workdir / "After" / "openEO.tif") as after:
        assert (after.crs, after.transform, after.shape) == (before.crs, before.transform, before.shape)
    return outputs


def test_the_notebook_runs_offline_in_laptop_mode(server_env, tmp_path):
    outputs = run_notebook(tmp_path)
    # authenticate_oidc() went through the device flow, which the laptop's issuer approved by itself.
    assert "Authenticated using device code flow" in outputs and "logged in as Anonymous" in outputs
    assert list(Path(server_env["OPENEO_CONFIG_HOME"]).glob("*refresh*")), "the client stored no refresh token"


def test_the_notebook_runs_unchanged_with_accounts_as_a_client(server_env, tmp_path, monkeypatch):
    # An operator's server with accounts: a user and a client for scripts, made with the command line.
    env = {**os.environ, **server_env}
    terracube(env, "users", "add", "alice", password=PASSWORDS["alice"])
    client_id, secret = client_credentials(terracube(env, "clients", "add", "notebook", "--user", "alice").stdout)
    monkeypatch.setenv("OPENEO_AUTH_METHOD", "client_credentials")
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_ID", client_id)
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", secret)
    outputs = run_notebook(tmp_path)
    assert "logged in as alice" in outputs
    assert "device code" not in outputs  # nobody was asked to visit a link


def test_the_committed_notebook_carries_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
