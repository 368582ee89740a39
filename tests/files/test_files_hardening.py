"""/files against a careless or hostile user: planted links, control characters, stalled uploads, crash leftovers."""

import os
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.auth.user import LOCAL_USER
from terracube.errors import FileNotFound
from terracube.files.store import TEMP_PREFIX, FileStore
from terracube.processes.env import ProcessEnv
from terracube.processes.load_uploaded_files import load_uploaded_files
from terracube.settings import Settings
from tests.live_server import LiveServer


@pytest.fixture
def files_root(tmp_path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def client(tmp_path, files_root) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", files_root=files_root)), base_url="http://127.0.0.1")


def local_folder(files_root: Path) -> Path:
    folder = FileStore(files_root).user(LOCAL_USER.user_id).root
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_planted_link_is_neither_served_listed_nor_read(client, files_root):
    folder = local_folder(files_root)
    (folder / "own.txt").write_text("mine")
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink("/etc", folder / "etc")
    for path in ("passwd", "etc/passwd"):
        answer = client.get(f"/files/{path}")
        assert answer.status_code == 404 and answer.json()["code"] == "FileNotFound", path
        assert "root:" not in answer.text
    assert [f["path"] for f in client.get("/files").json()["files"]] == ["own.txt"]
    for path in ("passwd", "etc/passwd", "/etc/passwd"):
        with pytest.raises(FileNotFound):
            load_uploaded_files([path], "GTiff", env=ProcessEnv(files_dir=folder))
    # Nor written or deleted through: the link's target is untouched.
    assert client.put("/files/etc/new.txt", content=b"x").status_code == 400
    assert client.delete("/files/passwd").status_code == 404
    assert Path("/etc/passwd").exists() and not Path("/etc/new.txt").exists()
    assert (folder / "passwd").is_symlink()


@pytest.mark.parametrize("name", ["a\nb.txt", "tab\there.txt", "bell\x07.txt", "del\x7f.txt", "c1\x85.txt", "dir\r/x.txt"])
def test_control_characters_are_refused(client, files_root, name):
    answer = client.put("/files/" + quote(name), content=b"x")  # percent-encoded, as a client sends it
    assert answer.status_code == 400 and answer.json()["code"] == "FilePathInvalid"
    assert "control characters" in answer.json()["message"]
    assert client.get("/files").json()["files"] == []


def test_a_leftover_temporary_file_is_removed_at_start(tmp_path, files_root):
    folder = local_folder(files_root)
    (folder / "sub").mkdir()
    leftover = folder / "sub" / f"{TEMP_PREFIX}crashed"
    leftover.write_bytes(b"half an upload")
    an_hour_ago = time.time() - 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    (folder / "kept.txt").write_text("a real file, however old")
    os.utime(folder / "kept.txt", (an_hour_ago, an_hour_ago))
    client = TestClient(create_app(Settings(data_dir=tmp_path / "data", files_root=files_root)), base_url="http://127.0.0.1")
    assert [f["path"] for f in client.get("/files").json()["files"]] == ["kept.txt"]
    assert not leftover.exists() and (folder / "kept.txt").exists()


def test_a_fresh_temporary_file_is_kept(files_root):
    """An upload in progress (in this server or another one sharing the folder) is not a leftover."""
    folder = local_folder(files_root)
    upload = FileStore(files_root).user(LOCAL_USER.user_id).begin("big.bin")
    upload.write(b"in progress")
    assert FileStore(files_root).remove_stale_uploads(older_than=60) == 0
    assert upload.temp.exists()
    upload.abort()
    assert list(folder.iterdir()) == []


@pytest.fixture(scope="module")
def stalling_server(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stall-files")
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_FILES_ROOT": str(root),
                         "TERRACUBE_UPLOAD_IDLE_TIMEOUT": "1.5"}).start()
    yield server, root
    server.stop()


def test_a_stalled_upload_times_out_and_stores_nothing(stalling_server):
    server, root = stalling_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"PUT /files/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
                     b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 1000)
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"RequestTimeout"' in answer and b"nothing was stored" in answer
    assert 1.0 < waited < 10
    # Neither the file nor its temporary file is left.
    assert [p for p in root.rglob("*") if p.is_file()] == []
    # The server still takes uploads.
    import requests

    assert requests.put(f"{server.url}/files/ok.bin", data=b"fine", timeout=30).status_code == 200


def test_a_user_folder_that_is_a_link_is_not_followed(tmp_path):
    store = FileStore(tmp_path / "files")
    store.root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    os.symlink(outside, store.user("alice").root)
    files = store.user("alice")
    assert files.list() == []
    with pytest.raises(FileNotFound):
        files.existing("secret.txt")
    with pytest.raises(Exception) as error:
        files.write("new.txt", [b"x"])
    assert getattr(error.value, "code", None) == "FilePathInvalid"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
