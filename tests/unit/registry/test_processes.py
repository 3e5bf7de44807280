"""Real processes: concurrent registration, a register killed half-way, gc against in-flight writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nbdeploy.errors import ModelNotFound
from nbdeploy.registry import Model, gc
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import Workspace

REGISTER_CHILD = textwrap.dedent("""
    import sys
    from nbdeploy.registry import Model
    ws, src, writer = sys.argv[1:4]
    sys.stdin.readline()  # start together
    m = Model.register(src, "shared-name", tags={"writer": writer}, workspace=ws)
    print(m.version)
""")


def test_eight_processes_register_the_same_name(ws: Workspace, tmp_path: Path) -> None:
    procs = []
    for i in range(8):
        src = tmp_path / f"model-{i}.bin"
        src.write_bytes(f"content {i}".encode() * 1000)
        procs.append(subprocess.Popen([sys.executable, "-c", REGISTER_CHILD, str(ws.path), str(src), str(i)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:  # every child is started (and importing) before any is released
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    assert sorted(int(out) for out, _ in results) == list(range(1, 9))
    models = Model.list(name="shared-name", workspace=ws)
    assert [m.version for m in models] == list(range(1, 9))
    assert sorted(m.tags["writer"] for m in models) == [str(i) for i in range(8)]
    for m in models:  # each version has its own writer's content
        out = Path(m.download(tmp_path / f"out-{m.version}"))
        assert out.read_bytes() == f"content {m.tags['writer']}".encode() * 1000


KILLED_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import nbdeploy.registry.blobs as blobs
    from nbdeploy.registry import Model
    ws, src, ready = sys.argv[1:4]

    def stall(tmp, written):
        if written >= 8 << 20:  # half-way through the big file: signal, then wait to be killed
            Path(ready).write_text(str(tmp))
            time.sleep(600)

    blobs._after_chunk = stall
    Model.register(src, "big", workspace=ws)
    print("finished, which it should not")
""")


def _register_and_kill(ws: Workspace, src: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(ws.path), str(src), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"child never reached the middle of the register: {out} {err}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _assert_nothing_visible(ws: Workspace) -> None:
    assert Model.list(workspace=ws) == []
    with pytest.raises(ModelNotFound):
        Model.get("big", workspace=ws)


def test_killed_mid_file_leaves_no_model_and_gc_cleans_tmp(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1 << 20) * 32)
    _register_and_kill(ws, src, tmp_path)
    _assert_nothing_visible(ws)
    assert len(list(ws.tmp_dir.iterdir())) == 1  # the partial blob
    report = gc(ws)
    assert report.tmp_removed == 1 and report.blobs_removed == 0
    assert list(ws.tmp_dir.iterdir()) == []
    assert Model.register(src, "big", workspace=ws).version == 1  # the workspace is fine afterwards


def test_killed_between_blobs_leaves_no_model_and_gc_removes_orphans(ws: Workspace, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a-small.bin").write_bytes(b"small" * 100)  # stored first (sorted), then the big one stalls
    (tree / "b-big.bin").write_bytes(os.urandom(1 << 20) * 32)
    _register_and_kill(ws, tree, tmp_path)
    _assert_nothing_visible(ws)
    assert len(list(BlobStore(ws).iter_blobs())) == 1  # the small file's blob, referenced by nothing
    dry = gc(ws, dry_run=True)
    assert (dry.blobs_removed, dry.tmp_removed) == (1, 1) and len(list(BlobStore(ws).iter_blobs())) == 1
    report = gc(ws)
    assert (report.blobs_removed, report.tmp_removed, report.bytes_freed) == (1, 1, 500)
    assert list(BlobStore(ws).iter_blobs()) == [] and list(ws.tmp_dir.iterdir()) == []
    m = Model.register(tree, "big", workspace=ws)
    assert gc(ws).blobs_removed == 0 and len(list(BlobStore(ws).iter_blobs())) == 2
    assert sorted(m.files) == ["tree/a-small.bin", "tree/b-big.bin"]


HOLD_CHILD = textwrap.dedent("""
    import sys
    from nbdeploy.workspace import Workspace
    with Workspace(sys.argv[1]).writer_lock():
        print("held", flush=True)
        sys.stdin.readline()
""")


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_gc_waits_for_writers_in_other_processes(ws: Workspace) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_CHILD, str(ws.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with ws.gc_lock(blocking=False) as got:
            assert got is False
    finally:
        proc.communicate("done\n", timeout=60)
    with ws.gc_lock(blocking=False) as got:
        assert got is True


def test_gc_keeps_referenced_blobs(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"keep me")
    m = Model.register(src, "m", workspace=ws)
    orphan = BlobStore(ws).path("ab" * 32)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"junk")
    report = gc(ws)
    assert (report.blobs_removed, report.blobs_kept) == (1, 1)
    assert Path(m.download(tmp_path / "out")).read_bytes() == b"keep me"


def test_killed_mid_re_register_keeps_the_stored_blob(ws: Workspace, tmp_path: Path) -> None:
    """Re-registering stored content replaces the blob only once the new copy is complete (issue 11 item 4)."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1 << 20) * 32)
    m = Model.register(src, "big", workspace=ws)
    blob = BlobStore(ws).path(m.file_entries()[0].digest)
    _register_and_kill(ws, src, tmp_path)
    assert BlobStore(ws).verify(m.file_entries()[0].digest, m.size) is None and blob.stat().st_mode & 0o777 == 0o444
    assert [x.version for x in Model.list(workspace=ws)] == [1]
    report = gc(ws)
    assert (report.tmp_removed, report.blobs_removed, report.blobs_kept) == (1, 0, 1)


SAME_CONTENT_CHILD = textwrap.dedent("""
    import sys
    from nbdeploy.registry import Model
    ws, src = sys.argv[1:3]
    sys.stdin.readline()
    print(Model.register(src, "same", workspace=ws).version)
""")


def test_eight_processes_register_the_same_content(ws: Workspace, tmp_path: Path) -> None:
    """Deduplication replaces the stored blob with each fresh copy: concurrent replacements stay consistent."""
    data = os.urandom(1 << 20) * 4
    procs = []
    for i in range(8):
        src = tmp_path / f"copy-{i}.bin"
        src.write_bytes(data)
        procs.append(subprocess.Popen([sys.executable, "-c", SAME_CONTENT_CHILD, str(ws.path), str(src)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    assert sorted(int(out) for out, _ in results) == list(range(1, 9))
    blobs = list(BlobStore(ws).iter_blobs())
    assert len(blobs) == 1 and blobs[0][1].read_bytes() == data
    assert list(ws.tmp_dir.iterdir()) == []
