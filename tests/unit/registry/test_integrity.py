"""Blob digests are verified where it is cheap (issue 11 item 4): `nbdeploy verify`, `model download`, and
re-registration, which repairs a blob changed on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdeploy.cli.main import main
from nbdeploy.errors import WorkspaceError
from nbdeploy.registry import Model
from nbdeploy.registry.blobs import BlobStore, clone_file, file_sha256
from nbdeploy.registry.verify import verify
from nbdeploy.workspace import Workspace


def corrupt(blob: Path, how: str) -> None:
    """What a writer with root rights can do to a 0444 blob."""
    if how == "append":
        with open(blob, "ab") as fh:
            fh.write(b"tampered")
    else:  # same size, other bytes
        with open(blob, "r+b") as fh:
            fh.seek(3)
            fh.write(b"XYZ")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def registered(ws: Workspace, make_file) -> tuple[Model, Path, bytes]:
    data = os.urandom(300_000)
    m = Model.register(make_file("model.bin", data), "m", workspace=ws)
    return m, BlobStore(ws).path(m.file_entries()[0].digest), data


@pytest.mark.parametrize("how", ["append", "overwrite"])
def test_verify_finds_a_changed_blob_and_names_its_models(ws: Workspace, registered, how: str, capsys) -> None:
    _, blob, _ = registered
    assert verify(ws).ok
    corrupt(blob, how)
    report = verify(ws)
    assert not report.ok and [p.models for p in report.problems] == [("m:1",)]
    assert verify(ws, quick=True).ok is (how == "overwrite")  # quick compares sizes only
    code, out, err = cli(capsys, "-w", str(ws.path), "verify")
    assert code == 1 and "m:1" in out and err.startswith("Error: ") and len(err.strip().splitlines()) == 1


def test_verify_reports_a_missing_blob_and_orphans(ws: Workspace, registered, make_file, capsys) -> None:
    _, blob, _ = registered
    BlobStore(ws).put_file(make_file("orphan.bin", b"orphan"))
    blob.unlink()
    report = verify(ws)
    assert [p.problem for p in report.problems] == ["missing"] and report.orphans == 1


def test_verify_of_an_intact_workspace(ws: Workspace, registered, capsys) -> None:
    code, out, _ = cli(capsys, "-w", str(ws.path), "verify")
    assert code == 0 and "Checked 1 blob(s)" in out and "0 damaged" in out


@pytest.mark.parametrize("how", ["append", "overwrite"])
def test_download_refuses_a_changed_blob_and_leaves_nothing(ws: Workspace, registered, tmp_path: Path, how: str,
                                                             capsys) -> None:
    m, blob, _ = registered
    corrupt(blob, how)
    with pytest.raises(WorkspaceError, match="does not match its digest"):
        m.download(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    code, _, err = cli(capsys, "-w", str(ws.path), "model", "download", "m:1", "-t", str(tmp_path / "out2"))
    assert code == 1 and "changed on disk" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["append", "overwrite"])
def test_re_registering_the_pristine_file_repairs_the_blob(ws: Workspace, registered, make_file, tmp_path: Path,
                                                           how: str) -> None:
    m, blob, data = registered
    corrupt(blob, how)
    again = Model.register(make_file("copy-of-model.bin", data), "m", workspace=ws)
    assert again.file_entries()[0].digest == m.file_entries()[0].digest  # still deduplicated
    assert blob.read_bytes() == data and verify(ws).ok
    assert Path(m.download(tmp_path / "out")).read_bytes() == data
    assert blob.stat().st_mode & 0o777 == 0o444


def test_clone_file_gives_an_independent_copy(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(70_000))
    digest = file_sha256(src)
    fd = os.open(tmp_path / "dst.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        how = clone_file(src, fd)
    finally:
        os.close(fd)
    assert how in ("reflink", "kernel copy", "copy")
    assert file_sha256(tmp_path / "dst.bin") == digest and not os.path.samefile(src, tmp_path / "dst.bin")
    with open(tmp_path / "dst.bin", "ab") as fh:
        fh.write(b"x")
    assert file_sha256(src) == digest


def test_link_downloads_share_one_deploy_copy_never_the_blob(ws: Workspace, registered, tmp_path: Path) -> None:
    m, blob, data = registered
    a = Path(m.download(tmp_path / "a", link=True))
    b = Path(m.download(tmp_path / "b", link=True))
    assert os.path.samefile(a, b) and not os.path.samefile(a, blob)  # one copy for every bundle
    with open(a, "ab") as fh:  # a deployment writes its model file
        fh.write(b"tampered")
    assert blob.read_bytes() == data
    c = Path(m.download(tmp_path / "c", link=True))
    assert c.read_bytes() == data and not os.path.samefile(c, a)  # the changed copy is not handed out again
    assert os.path.samefile(c, Path(m.download(tmp_path / "d", link=True)))


def test_gc_detaches_blobs_hard_linked_by_old_bundles(ws: Workspace, registered, tmp_path: Path) -> None:
    """Bundles laid out before the fix hard-link blobs; gc gives the blob its own inode, the bundle keeps its file."""
    from nbdeploy.registry import gc

    _, blob, data = registered
    old_bundle_file = tmp_path / "old-bundle.bin"
    os.link(blob, old_bundle_file)  # what nbdeploy laid out before
    assert gc(ws, dry_run=True).blobs_detached == 1 and os.path.samefile(blob, old_bundle_file)
    report = gc(ws)
    assert report.blobs_detached == 1 and report.blobs_removed == 0
    assert not os.path.samefile(blob, old_bundle_file) and blob.stat().st_nlink == 1
    assert blob.read_bytes() == data and old_bundle_file.read_bytes() == data and blob.stat().st_mode & 0o777 == 0o444
    with open(old_bundle_file, "ab") as fh:
        fh.write(b"tampered")
    assert verify(ws).ok and gc(ws).blobs_detached == 0


def test_gc_removes_deploy_copies_no_bundle_links(ws: Workspace, registered, tmp_path: Path) -> None:
    from nbdeploy.registry import gc

    m, _, _ = registered
    laid = Path(m.download(tmp_path / "bundle", link=True))
    assert gc(ws).copies_removed == 0 and laid.stat().st_nlink == 2
    laid.unlink()  # the bundle is gone
    report = gc(ws)
    assert report.copies_removed == 1 and report.bytes_freed == m.size
    assert list((ws.cache_dir / "model-files").iterdir()) == []
    assert Path(m.download(tmp_path / "again", link=True)).read_bytes() == Path(m.download(tmp_path / "plain")).read_bytes()
