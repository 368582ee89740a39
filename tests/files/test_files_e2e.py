"""/files and load_uploaded_files through the official client against a live server."""

from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import rasterio
import requests
from rasterio.transform import from_origin

from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def files_root(tmp_path_factory):
    return tmp_path_factory.mktemp("files-root")


@pytest.fixture(scope="module")
def live(data_dir, files_root):
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_FILES_ROOT": str(files_root)}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def con(live):
    import openeo

    return openeo.connect(live.url, default_timeout=300).authenticate_basic("alice", "secret")


def write_geotiff(path: Path) -> np.ndarray:
    values = np.arange(2 * 4 * 5, dtype="float32").reshape(2, 4, 5)
    profile = {"driver": "GTiff", "width": 5, "height": 4, "count": 2, "dtype": "float32", "crs": "EPSG:32632",
                   "transform": from_origin(600000, 5600000, 10, 10)}
    with rasterio.open(path, "w", **profile) as out:
        out.write(values)
        out.descriptions = ("red", "nir")
    return values


def test_upload_list_download_delete(con, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_bytes(b"some bytes\n" * 100)
    uploaded = con.upload_file(source, target="folder/sub/notes.txt")
    assert uploaded.path == PurePosixPath("folder/sub/notes.txt")
    listed = {str(f.path): f for f in con.list_files()}
    assert "folder/sub/notes.txt" in listed and listed["folder/sub/notes.txt"].metadata["size"] == 1100
    back = listed["folder/sub/notes.txt"].download(tmp_path / "back.txt")
    assert Path(back).read_bytes() == source.read_bytes()
    uploaded.delete()
    assert "folder/sub/notes.txt" not in {str(f.path) for f in con.list_files()}


def test_paging(live, con, tmp_path):
    for name in ("p1.txt", "p2.txt", "p3.txt"):
        (tmp_path / name).write_text(name)
        con.upload_file(tmp_path / name, target=f"paging/{name}")
    page = requests.get(f"{live.url}/files", params={"limit": 2}).json()
    assert len(page["files"]) == 2 and {link["rel"] for link in page["links"]} >= {"first", "next"}
    for name in ("p1.txt", "p2.txt", "p3.txt"):
        requests.delete(f"{live.url}/files/paging/{name}").raise_for_status()


@pytest.mark.parametrize("path", ["%2E%2E/escape.txt", "a/%2E%2E/%2E%2E/escape.txt", "%2Fetc/passwd"])
def test_traversal_is_refused(live, files_root, path):
    answer = requests.put(f"{live.url}/files/{path}", data=b"x", headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 400 and answer.json()["code"] == "FilePathInvalid", answer.text
    assert not (files_root / "escape.txt").exists() and not (files_root.parent / "escape.txt").exists()


def test_missing_file(live):
    for method in ("get", "delete"):
        answer = requests.request(method, f"{live.url}/files/no/such.tif")
        assert answer.status_code == 404 and answer.json()["code"] == "FileNotFound"


def test_capabilities_list_the_routes(live):
    endpoints = {e["path"]: e["methods"] for e in requests.get(live.url + "/").json()["endpoints"]}
    assert set(endpoints["/files"]) >= {"GET"}
    assert set(endpoints["/files/{path}"]) >= {"GET", "PUT", "DELETE"}


def test_load_uploaded_geotiff(con, tmp_path):
    values = write_geotiff(tmp_path / "scene.tif")
    con.upload_file(tmp_path / "scene.tif", target="input/scene.tif")
    cube = con.datacube_from_process("load_uploaded_files", paths=["/input/scene.tif"], format="GTiff")
    ndvi = cube.reduce_dimension(dimension="bands", reducer=lambda d: (d[1] - d[0]) / (d[1] + d[0]))
    out = tmp_path / "ndvi.tif"
    ndvi.save_result("GTiff").download(out)
    with rasterio.open(out) as result:
        got = result.read(1)
        assert result.crs.to_epsg() == 32632 and result.transform.c == 600000
    expected = (values[1] - values[0]) / (values[1] + values[0])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_load_uploaded_geotiff_in_a_batch_job(con, tmp_path):
    write_geotiff(tmp_path / "scene.tif")
    con.upload_file(tmp_path / "scene.tif", target="batch/scene.tif")
    cube = con.datacube_from_process("load_uploaded_files", paths=["batch/scene.tif"], format="GTiff")
    job = cube.reduce_dimension(dimension="bands", reducer="max").save_result("GTiff").create_job()
    job.start_and_wait(max_poll_interval=1)
    paths = job.get_results().download_files(tmp_path / "job")
    tif = next(p for p in paths if str(p).endswith(".tif"))
    with rasterio.open(tif) as result:
        assert result.read(1)[0, 0] == 20.0


def test_load_uploaded_files_errors(con):
    import openeo

    missing = con.datacube_from_process("load_uploaded_files", paths=["../nope.tif"], format="GTiff")
    with pytest.raises(openeo.rest.OpenEoApiError) as error:
        missing.execute()
    assert error.value.code == "FileNotFound" and error.value.http_status_code == 404
    unknown = con.datacube_from_process("load_uploaded_files", paths=["input/scene.tif"], format="XYZ")
    with pytest.raises(openeo.rest.OpenEoApiError) as error:
        unknown.execute()
    assert error.value.code == "FormatUnsupported"


def test_files_survive_a_restart(data_dir, tmp_path):
    root = tmp_path / "root"
    env = {"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_FILES_ROOT": str(root)}
    first = LiveServer(env).start()
    try:
        requests.put(f"{first.url}/files/keep/me.txt", data=b"still here").raise_for_status()
    finally:
        first.stop()
    second = LiveServer(env).start()
    try:
        assert [f["path"] for f in requests.get(f"{second.url}/files").json()["files"]] == ["keep/me.txt"]
        assert requests.get(f"{second.url}/files/keep/me.txt").content == b"still here"
    finally:
        second.stop()
