"""One-line errors that say what is wrong (issue 11 items 12, 13): a full or read-only workspace disk, a
download target in the way or read-only, file names and metadata that are not UTF-8.

Full and read-only disks are real: a small tmpfs mounted for the test (needs root, as the test machine runs).
The CLI runs as a child process with bytes arguments, as a shell would start it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdeploy.errors import InvalidInput
from nbdeploy.registry import Model
from nbdeploy.workspace import Workspace


def nbdeploy(*argv: str | bytes | Path, check: int | None = None) -> tuple[int, str, str]:
    """Run the real CLI in a child; stdout/stderr decoded leniently (the CLI must never crash on printing)."""
    proc = subprocess.run([sys.executable, "-m", "nbdeploy", *map(os.fsencode, argv)], capture_output=True,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    if check is not None:
        assert proc.returncode == check, (proc.returncode, out, err)
    return proc.returncode, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (unmounted afterwards)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the test machine runs tests as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def remount_read_only(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


def test_register_on_a_full_disk_blames_the_disk_not_the_source(small_disk: Path, tmp_path: Path) -> None:
    ws = small_disk / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    _, _, err = nbdeploy("-w", ws, "model", "register", "-n", "big", "-p", big, check=1)
    line = one_line_error(err)
    assert "out of disk space" in line and "Cannot read" not in line
    assert list((ws / "tmp").iterdir()) == []
    _, out, _ = nbdeploy("-w", ws, "model", "list", check=0)
    assert "big" not in out


def test_commit_on_a_full_disk_is_one_line_and_the_registry_stays_readable(small_disk: Path, tmp_path: Path) -> None:
    ws = small_disk / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    (tmp_path / "m.bin").write_bytes(b"weights")
    nbdeploy("-w", ws, "model", "register", "-n", "m", "-p", tmp_path / "m.bin", check=0)
    fill(small_disk)
    _, _, err = nbdeploy("-w", ws, "model", "update", "m:1", "--add-tag", "k=" + "x" * 50_000, check=1)
    assert "out of disk space" in one_line_error(err)
    _, out, _ = nbdeploy("-w", ws, "model", "list", check=0)
    assert out.splitlines()[1].split()[:2] == ["m", "1"]
    (small_disk / "filler").unlink()
    nbdeploy("-w", ws, "model", "update", "m:1", "--add-tag", "k=v", check=0)


def test_commit_failing_with_disk_full_in_process(small_disk: Path, tmp_path: Path) -> None:
    """The library raises WorkspaceError (not sqlite3.OperationalError) when COMMIT meets a full disk."""
    from nbdeploy.errors import WorkspaceError

    ws = Workspace.create(small_disk / "ws")
    (tmp_path / "m.bin").write_bytes(b"weights")
    m = Model.register(tmp_path / "m.bin", "m", workspace=ws)
    fill(small_disk)
    with pytest.raises(WorkspaceError, match="out of disk space"):
        m.add_tags({f"k{i}": "x" * 1000 for i in range(200)})
    assert Model.get("m", 1, workspace=ws).tags == {}
    (small_disk / "filler").unlink()
    m.add_tags({"k": "v"})
    assert Model.get("m", 1, workspace=ws).tags == {"k": "v"}


def test_workspace_opened_read_only_writes_again_once_the_disk_allows(small_disk: Path, tmp_path: Path) -> None:
    ws = Workspace.create(small_disk / "ws")
    (tmp_path / "m.bin").write_bytes(b"weights")
    Model.register(tmp_path / "m.bin", "m", workspace=ws)
    ws.close()
    remount_read_only(small_disk)
    later = Workspace(ws.path)
    m = Model.get("m", 1, workspace=later)
    assert later.read_only and m.tags == {}
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    m.add_tags({"k": "v"})  # the same process, the same Workspace: reopened read-write
    assert not later.read_only and Model.get("m", 1, workspace=later).tags == {"k": "v"}


def test_read_only_workspace_stays_readable(small_disk: Path, tmp_path: Path) -> None:
    ws = small_disk / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    (tmp_path / "m.bin").write_bytes(b"weights")
    nbdeploy("-w", ws, "model", "register", "-n", "m", "-p", tmp_path / "m.bin", "--tag", "a=b", check=0)
    remount_read_only(small_disk)
    _, out, _ = nbdeploy("-w", ws, "model", "list", check=0)
    assert "a=b" in out
    nbdeploy("-w", ws, "model", "show", "m", check=0)
    nbdeploy("-w", ws, "workspace", "show", check=0)
    nbdeploy("-w", ws, "verify", check=0)
    nbdeploy("-w", ws, "gc", "--dry-run", check=0)
    _, out, _ = nbdeploy("-w", ws, "model", "download", "m", "-t", tmp_path / "out", check=0)
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"weights"
    for argv in (("model", "register", "-n", "m", "-p", tmp_path / "m.bin"), ("model", "update", "m:1", "--add-tag", "c=d"),
                 ("model", "delete", "m:1"), ("gc",)):
        _, _, err = nbdeploy("-w", ws, *argv, check=1)
        assert "read-only" in one_line_error(err), argv


def test_download_onto_a_read_only_target(small_disk: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    (tmp_path / "m.bin").write_bytes(b"weights")
    nbdeploy("-w", ws, "model", "register", "-n", "m", "-p", tmp_path / "m.bin", check=0)
    (small_disk / "target").mkdir()
    remount_read_only(small_disk)
    _, _, err = nbdeploy("-w", ws, "model", "download", "m", "-t", small_disk / "target", check=1)
    assert "Read-only file system" in one_line_error(err)


def test_download_where_a_file_or_folder_is_in_the_way(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "w.bin").write_bytes(b"w")
    nbdeploy("-w", ws, "model", "register", "-n", "tree", "-p", tmp_path / "tree", check=0)
    # the target folder is a file
    (tmp_path / "plain-file").write_text("x")
    _, _, err = nbdeploy("-w", ws, "model", "download", "tree", "-t", tmp_path / "plain-file", "--exist-ok", check=2)
    assert "is a file" in err  # click's usage error
    with pytest.raises(InvalidInput, match="a file is in the way"):
        Model.get("tree", workspace=Workspace(ws)).download(tmp_path / "plain-file", exist_ok=True)
    # a file where the model needs a folder
    (tmp_path / "out1").mkdir()
    (tmp_path / "out1" / "tree").write_text("x")
    _, _, err = nbdeploy("-w", ws, "model", "download", "tree", "-t", tmp_path / "out1", "--exist-ok", check=1)
    assert "a file is in the way" in one_line_error(err)
    # a folder where the model has a file
    (tmp_path / "out2" / "tree" / "sub" / "w.bin").mkdir(parents=True)
    _, _, err = nbdeploy("-w", ws, "model", "download", "tree", "-t", tmp_path / "out2", "--exist-ok", check=1)
    assert "a folder is in the way" in one_line_error(err)
    left = [p for p in tmp_path.rglob("*") if ".nbdeploy-" in p.name]
    assert left == []


NON_UTF8_DIR = b"caf\xe9"  # Latin-1 bytes: a legal Linux file name, not UTF-8


def test_non_utf8_file_names_register_show_and_download_byte_for_byte(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    src = os.fsencode(tmp_path / "model")
    os.makedirs(os.path.join(src, NON_UTF8_DIR))
    with open(os.path.join(src, NON_UTF8_DIR, b"w\xff.bin"), "wb") as fh:
        fh.write(b"weights")
    with open(os.path.join(src, b"ok.txt"), "wb") as fh:
        fh.write(b"ok")
    single = os.path.join(os.fsencode(tmp_path), b"\xfe\xfd.pkl")
    with open(single, "wb") as fh:
        fh.write(b"single")
    _, out, _ = nbdeploy("-w", ws, "model", "register", "-n", "odd", "-p", src, check=0)
    assert "Registered odd:1" in out
    nbdeploy("-w", ws, "model", "register", "-n", "single", "-p", single, check=0)
    _, out, _ = nbdeploy("-w", ws, "model", "show", "odd", check=0)
    assert "model/caf\\xe9/w\\xff.bin" in out
    nbdeploy("-w", ws, "model", "show", "odd", "-o", "json", check=0)
    nbdeploy("-w", ws, "model", "list", "-o", "json", check=0)
    _, out, _ = nbdeploy("-w", ws, "model", "download", "single", "-t", tmp_path / "out", check=0)
    assert "\\xfe\\xfd.pkl" in out
    nbdeploy("-w", ws, "model", "download", "odd", "-t", tmp_path / "out", check=0)
    out_dir = os.fsencode(tmp_path / "out")
    with open(os.path.join(out_dir, b"model", NON_UTF8_DIR, b"w\xff.bin"), "rb") as fh:
        assert fh.read() == b"weights"
    with open(os.path.join(out_dir, b"\xfe\xfd.pkl"), "rb") as fh:
        assert fh.read() == b"single"
    nbdeploy("-w", ws, "verify", check=0)
    m = Model.get("odd", workspace=Workspace(ws))
    assert sorted(os.fsencode(p) for p in m.files) == [b"model/caf\xe9/w\xff.bin", b"model/ok.txt"]


def test_utf8_folder_digest_is_unchanged(tmp_path: Path) -> None:
    """The folder digest formula for UTF-8 names is what it was (existing digests stay valid)."""
    import hashlib

    (tmp_path / "m" / "é").mkdir(parents=True)
    (tmp_path / "m" / "é" / "a.bin").write_bytes(b"a")
    m = Model.register(tmp_path / "m", "m", workspace=Workspace.create(tmp_path / "ws"))
    e = m.file_entries()[0]
    expected = hashlib.sha256(f"{e.mode:o} {e.digest} {e.path}\n".encode()).hexdigest()
    assert m.digest == "sha256:" + expected


@pytest.mark.parametrize("argv", [
    ("--tag", b"k=\xff"), ("--tag", b"\xff=v"), ("--property", b"p=\xfe"), ("--description", b"d\xff"),
    ("--framework", b"F\xff"),
])
def test_non_utf8_metadata_is_a_one_line_error(tmp_path: Path, argv: tuple[str, bytes]) -> None:
    ws = tmp_path / "ws"
    nbdeploy("workspace", "create", ws, check=0)
    (tmp_path / "m.bin").write_bytes(b"w")
    _, _, err = nbdeploy("-w", ws, "model", "register", "-n", "m", "-p", tmp_path / "m.bin", *argv, check=1)
    assert "not valid UTF-8" in one_line_error(err)
    _, _, err = nbdeploy("-w", ws, "model", "list", "--tag", b"k=\xff", check=1)
    assert "not valid UTF-8" in one_line_error(err)


def test_read_only_workspace_of_the_previous_schema_stays_readable(small_disk: Path, tmp_path: Path) -> None:
    """A workspace written before migration 4 (no id yet) on a read-only mount is read without migrating."""
    import sqlite3

    import nbdeploy.workspace as wsmod

    ws = small_disk / "old"
    for sub in ("blobs", "tmp", "services", "cache"):
        (ws / sub).mkdir(parents=True)
    conn = sqlite3.connect(ws / "nbdeploy.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for _, script in wsmod.MIGRATIONS[:3]:
        for statement in wsmod._split_sql(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO models(name, version, created_time, kind, root, size, digest) "
                 "VALUES ('old', 1, 't', 'file', 'm.bin', 1, 'sha256:00')")
    conn.close()
    remount_read_only(small_disk)
    _, out, _ = nbdeploy("-w", ws, "model", "list", check=0)
    assert out.splitlines()[1].split()[:2] == ["old", "1"]
    _, _, err = nbdeploy("-w", ws, "model", "update", "old:1", "--add-tag", "a=b", check=1)
    assert "read-only" in one_line_error(err)
