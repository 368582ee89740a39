"""The file store on its own: paths, atomic writes, users kept apart."""

import pytest

from terracube.files.store import FileNotFound, FilePathInvalid, FileStore, check_path


# The last four: characters the openEO API's file path pattern excludes (found by the fuzzing: a listing
# with such a name did not match the API's schema).
@pytest.mark.parametrize("path", ["../x.tif", "a/../../x.tif", "/etc/passwd", "a//b", "./a", "", "a\\b", ".upload-x",
                                  "VÔå¶.o:", "C:/x.tif", "it's.tif", 'say "x".tif'])
def test_bad_paths_are_refused(path):
    with pytest.raises(FilePathInvalid):
        check_path(path)


def test_nested_write_list_delete(tmp_path):
    files = FileStore(tmp_path).user("alice")
    info = files.write("in/sub/a.txt", [b"hello ", b"world"])
    assert info["path"] == "in/sub/a.txt" and info["size"] == 11 and info["modified"].endswith("Z")
    assert [f["path"] for f in files.list()] == ["in/sub/a.txt"]
    files.delete("in/sub/a.txt")
    assert files.list() == [] and not (files.root / "in").exists()
    with pytest.raises(FileNotFound):
        files.delete("in/sub/a.txt")


def test_broken_upload_leaves_nothing(tmp_path):
    files = FileStore(tmp_path).user("alice")
    files.write("a.txt", [b"old"])

    def chunks():
        yield b"new part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        files.write("a.txt", chunks())
    assert (files.root / "a.txt").read_bytes() == b"old"
    assert [p.name for p in files.root.iterdir()] == ["a.txt"]


def test_users_are_apart(tmp_path):
    store = FileStore(tmp_path)
    store.user("alice").write("a.txt", [b"secret"])
    assert store.user("bob").list() == []
    with pytest.raises(FileNotFound):
        store.user("bob").existing("a.txt")
    # A user id that is not a safe folder name gets a hashed one, never a path.
    assert store.user("../alice").root.parent == store.root


def test_an_aborted_upload_leaves_nothing(tmp_path):
    files = FileStore(tmp_path).user("alice")
    upload = files.begin("new/a.txt")
    upload.write(b"half")
    upload.abort()
    assert files.list() == []
