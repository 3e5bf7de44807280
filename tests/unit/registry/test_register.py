from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from nbdeploy.errors import InvalidInput, InvalidName, NbdeployError
from nbdeploy.registry import Model
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import Workspace


def test_register_file_sets_attributes(ws: Workspace, make_file) -> None:
    src = make_file("model.pkl", b"abc")
    m = Model.register(str(src), "diabetes", tags={"area": "health"}, properties={"auc": "0.9"},
                       description="d", model_framework=Model.Framework.SCIKITLEARN,
                       model_framework_version="1.5", workspace=ws)
    assert (m.name, m.version, m.id) == ("diabetes", 1, "diabetes:1")
    assert m.size == 3 and m.files == ["model.pkl"]
    assert m.digest == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert m.tags == {"area": "health"} and m.properties == {"auc": "0.9"}
    assert (m.description, m.model_framework, m.model_framework_version) == ("d", "ScikitLearn", "1.5")
    assert m.created_time.tzinfo is not None
    again = Model.get("diabetes", workspace=ws)
    assert again == m and again.tags == m.tags and again.files == ["model.pkl"]


def test_versions_count_up_per_name(ws: Workspace, make_file) -> None:
    src = make_file("m.bin")
    assert [Model.register(src, "a", workspace=ws).version for _ in range(3)] == [1, 2, 3]
    assert Model.register(src, "b", workspace=ws).version == 1


def test_folder_keeps_relative_paths_and_modes(ws: Workspace, make_file, tmp_path: Path) -> None:
    make_file("tree/weights/w.bin", b"w" * 10, mode=0o600)
    make_file("tree/run.sh", b"#!/bin/sh\n", mode=0o755)
    make_file("tree/a/b/c.txt", b"c", mode=0o644)
    m = Model.register(tmp_path / "src" / "tree", "tree", workspace=ws)
    modes = {e.path: e.mode for e in m.file_entries()}
    assert modes == {"tree/a/b/c.txt": 0o644, "tree/run.sh": 0o755, "tree/weights/w.bin": 0o600}
    assert m.size == 10 + 10 + 1 and m.is_folder and m.root == "tree"


def test_identical_content_is_stored_once(ws: Workspace, make_file, tmp_path: Path) -> None:
    make_file("t/x.bin", b"same")
    make_file("t/y.bin", b"same")
    Model.register(tmp_path / "src" / "t", "t", workspace=ws)
    Model.register(tmp_path / "src" / "t", "t", workspace=ws)
    Model.register(make_file("z.bin", b"same"), "z", workspace=ws)
    assert len(list(BlobStore(ws).iter_blobs())) == 1
    assert list(ws.tmp_dir.iterdir()) == []


def test_folder_digest_depends_on_paths_and_modes(ws: Workspace, make_file, tmp_path: Path) -> None:
    make_file("d1/a", b"x")
    make_file("d2/b", b"x")
    m1 = Model.register(tmp_path / "src" / "d1", "d", workspace=ws)
    m2 = Model.register(tmp_path / "src" / "d2", "d", workspace=ws)
    assert m1.digest != m2.digest


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_path_is_refused(ws: Workspace, bad) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        Model.register(bad, "m", workspace=ws)


def test_missing_path_is_refused(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        Model.register(tmp_path / "nope.pkl", "m", workspace=ws)
    assert Model.list(workspace=ws) == []


def test_empty_folder_is_refused(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="empty folder"):
        Model.register(tmp_path / "empty", "m", workspace=ws)


def test_fifo_in_folder_is_refused(ws: Workspace, make_file, tmp_path: Path) -> None:
    make_file("f/ok.bin")
    os.mkfifo(tmp_path / "src" / "f" / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        Model.register(tmp_path / "src" / "f", "m", workspace=ws)
    assert Model.list(workspace=ws) == []


def test_empty_file_is_a_valid_model(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("empty.bin", b""), "m", workspace=ws)
    assert m.size == 0 and m.files == ["empty.bin"]


UNREADABLE_CHILD = textwrap.dedent("""
    import os, sys
    from nbdeploy.errors import InvalidInput
    from nbdeploy.registry import Model
    from nbdeploy.workspace import Workspace
    import concurrent.futures, getpass, hashlib, json, tempfile  # before losing access to the stdlib
    os.setgid(65534); os.setuid(65534)
    ws = Workspace.create(sys.argv[1])
    try:
        Model.register(sys.argv[2], "m", workspace=ws)
    except InvalidInput as exc:
        print("InvalidInput:", exc)
        print("models:", len(Model.list(workspace=ws)))
""")


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        ws = Workspace.create(tmp_path / "ws")
        src = tmp_path / "secret.pkl"
        src.write_bytes(b"x")
        src.chmod(0)
        with pytest.raises(InvalidInput, match="Cannot read"):
            Model.register(src, "m", workspace=ws)
        assert Model.list(workspace=ws) == []
        return
    # root reads anything: run the register as 'nobody' in a child, in a folder it may use
    shared = Path(tempfile.mkdtemp(prefix="nbdeploy-unreadable-"))
    try:
        shared.chmod(0o777)
        src = shared / "secret.pkl"
        src.write_bytes(b"x")
        src.chmod(0)
        out = subprocess.run([sys.executable, "-c", UNREADABLE_CHILD, str(shared / "ws"), str(src)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "InvalidInput: Cannot read" in out.stdout and "models: 0" in out.stdout
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)


@pytest.mark.parametrize("name", ["", "-lead", ".lead", "_lead", "has space", "a/b", "a:b", "é", "x" * 256, 7])
def test_invalid_names_are_refused_naming_the_rule(ws: Workspace, make_file, name) -> None:
    with pytest.raises(InvalidName) as info:
        Model.register(make_file("m.bin"), name, workspace=ws)
    assert "^[a-zA-Z0-9]" in str(info.value)


@pytest.mark.parametrize("name", ["a", "A1", "1.0-model_x", "x" * 255])
def test_valid_names(ws: Workspace, make_file, name) -> None:
    assert Model.register(make_file("m.bin"), name, workspace=ws).name == name


@pytest.mark.parametrize("tags", [["a", "b"], {"": "v"}, {"a=b": "v"}, {"a": 1}, {"a": None}, {1: "x"}, "a=b"])
def test_malformed_tags_are_refused(ws: Workspace, make_file, tags) -> None:
    with pytest.raises(InvalidInput, match="Malformed"):
        Model.register(make_file("m.bin"), "m", tags=tags, workspace=ws)
    with pytest.raises(InvalidInput, match="Malformed"):
        Model.register(make_file("m.bin"), "m", properties=tags, workspace=ws)


def test_framework_version_needs_framework(ws: Workspace, make_file) -> None:
    with pytest.raises(InvalidInput, match="model_framework"):
        Model.register(make_file("m.bin"), "m", model_framework_version="1.0", workspace=ws)


def test_errors_are_nbdeploy_errors(ws: Workspace) -> None:
    with pytest.raises(NbdeployError):
        Model.register("", "m", workspace=ws)


def test_workspace_argument_accepts_a_path(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", workspace=str(ws.path))
    assert Model.get("m", workspace=ws.path).id == m.id


def test_a_source_changed_while_registering_is_refused(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    from nbdeploy.registry import blobs

    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(1 << 20))

    def append_more(tmp: Path, written: int) -> None:
        with open(src, "ab") as fh:  # another process still writing the file
            fh.write(b"late bytes")

    monkeypatch.setattr(blobs, "_after_chunk", append_more)
    with pytest.raises(InvalidInput, match="changed while it was being registered"):
        Model.register(src, "growing", workspace=ws)
    assert Model.list(workspace=ws) == []


def test_user_space_copy_is_the_fallback(ws: Workspace, make_file, monkeypatch) -> None:
    from nbdeploy.registry import blobs

    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(18, "Invalid cross-device link")  # EXDEV, as on kernels that cannot copy across filesystems

    monkeypatch.setattr(os, "copy_file_range", refuse)
    path = make_file("m.bin", b"x" * (5 << 20))
    model = Model.register(path, "fallback", workspace=ws)
    assert model.digest.endswith(hashlib.sha256(b"x" * (5 << 20)).hexdigest())
