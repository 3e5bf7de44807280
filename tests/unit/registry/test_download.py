from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdeploy.errors import AlreadyExists, WorkspaceError
from nbdeploy.registry import Model
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import Workspace


def test_download_file_returns_its_path(ws: Workspace, make_file, tmp_path: Path) -> None:
    m = Model.register(make_file("model.pkl", b"abc"), "m", workspace=ws)
    out = m.download(tmp_path / "out")
    assert out == str(tmp_path / "out" / "model.pkl")
    assert Path(out).read_bytes() == b"abc"


def test_download_folder_keeps_tree_and_modes(ws: Workspace, make_file, tmp_path: Path) -> None:
    make_file("tree/run.sh", b"#!/bin/sh\n", mode=0o755)
    make_file("tree/sub/w.bin", b"w", mode=0o600)
    m = Model.register(tmp_path / "src" / "tree", "tree", workspace=ws)
    out = Path(m.download(tmp_path / "out"))
    assert out == tmp_path / "out" / "tree"
    assert (out / "sub" / "w.bin").read_bytes() == b"w"
    assert (out / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "sub" / "w.bin").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["run.sh", "sub", "tree", "w.bin"]


def test_download_refuses_to_overwrite_unless_exist_ok(ws: Workspace, make_file, tmp_path: Path) -> None:
    m = Model.register(make_file("model.pkl", b"new"), "m", workspace=ws)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.pkl").write_bytes(b"old")
    with pytest.raises(AlreadyExists, match="exist_ok"):
        m.download(tmp_path / "out")
    assert (tmp_path / "out" / "model.pkl").read_bytes() == b"old"
    m.download(tmp_path / "out", exist_ok=True)
    assert (tmp_path / "out" / "model.pkl").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path / "out")) == ["model.pkl"]


@pytest.mark.parametrize("link", [True, False])
def test_download_never_links_the_blob(ws: Workspace, make_file, tmp_path: Path, link: bool) -> None:
    """Issue 11 item 4: a bundle's model files were hard links to the blobs; a root writer changed the registry."""
    make_file("t/data.bin", b"d" * 100, mode=0o444)
    make_file("t/tool.sh", b"#!/bin/sh\n", mode=0o755)
    m = Model.register(tmp_path / "src" / "t", "t", workspace=ws)
    out = Path(m.download(tmp_path / "bundle", link=link))
    blobs = BlobStore(ws)
    entries = {e.path: e for e in m.file_entries()}
    data_blob = blobs.path(entries["t/data.bin"].digest)
    assert not os.path.samefile(out / "data.bin", data_blob)
    assert (out / "data.bin").stat().st_mode & 0o777 == 0o444 and (out / "tool.sh").stat().st_mode & 0o777 == 0o755
    with open(out / "data.bin", "ab") as fh:  # what a root init() can do to a 0444 file
        fh.write(b"appended by the deployment")
    assert data_blob.read_bytes() == b"d" * 100
    assert BlobStore(ws).verify(entries["t/data.bin"].digest, 100) is None


def test_missing_blob_is_reported_as_damage(ws: Workspace, make_file, tmp_path: Path) -> None:
    m = Model.register(make_file("model.pkl"), "m", workspace=ws)
    BlobStore(ws).path(m.file_entries()[0].digest).unlink()
    with pytest.raises(WorkspaceError, match="damaged"):
        m.download(tmp_path / "out")
