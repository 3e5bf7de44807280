"""A workspace whose database is lost, empty or another's is refused, and gc never deletes blobs then
(issue 11 item 5); secret-holding files are owner-only and superseded keys leave the history (item 11)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

import nbdeploy.workspace as wsmod
from nbdeploy.cli.main import main
from nbdeploy.errors import WorkspaceError
from nbdeploy.registry import Model, gc
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import Workspace, schema_version


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def registered(tmp_path: Path, where: Path) -> tuple[Workspace, Path]:
    """A workspace at ``where`` with one 1 MiB model; returns it and the model's blob file."""
    ws = Workspace.create(where)
    src = tmp_path / f"model-{where.name}.bin"
    src.write_bytes(os.urandom(1 << 20))
    m = Model.register(src, "m", workspace=ws)
    blob = BlobStore(ws).path(m.file_entries()[0].digest)
    ws.close()
    return ws, blob


def drop_database(ws_path: Path, keep_empty_file: bool) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(ws_path / "nbdeploy.db") + suffix).unlink(missing_ok=True)
    if keep_empty_file:
        (ws_path / "nbdeploy.db").write_bytes(b"")
    else:
        (ws_path / "nbdeploy.db").unlink()


def test_zero_byte_database_is_refused_and_gc_keeps_every_blob(tmp_path: Path, capsys) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    drop_database(ws.path, keep_empty_file=True)
    with pytest.raises(WorkspaceError, match="empty.*existing workspace.*1 blob file"):
        Workspace(ws.path)
    code, _, err = cli(capsys, "-w", str(ws.path), "gc")
    assert code == 1 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "-w", str(ws.path), "model", "list")
    assert code == 1 and "empty" in err
    assert blob.is_file() and (ws.path / "nbdeploy.db").stat().st_size == 0


def test_missing_database_with_blobs_is_refused(tmp_path: Path, capsys) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    drop_database(ws.path, keep_empty_file=False)
    with pytest.raises(WorkspaceError, match="missing.*existing workspace"):
        Workspace(ws.path)
    code, _, err = cli(capsys, "-w", str(ws.path), "gc")
    assert code == 1 and "missing" in err
    with pytest.raises(WorkspaceError, match="missing.*existing workspace"):
        Workspace.create(ws.path, exist_ok=True)
    assert blob.is_file() and not (ws.path / "nbdeploy.db").exists()


def test_lost_database_of_the_home_default_is_not_recreated(tmp_path: Path, _isolated: Path, capsys) -> None:
    ws, blob = registered(tmp_path, _isolated / ".nbdeploy")
    drop_database(ws.path, keep_empty_file=False)
    for argv in (("model", "list"), ("gc",)):
        code, _, err = cli(capsys, *argv)
        assert code == 1 and "missing" in err, argv
    src = tmp_path / "other.bin"
    src.write_bytes(b"x")
    with pytest.raises(WorkspaceError, match="missing"):
        Model.register(src, "other")
    assert blob.is_file() and not (ws.path / "nbdeploy.db").exists()


def test_database_of_another_workspace_is_refused(tmp_path: Path, capsys) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    other = Workspace.create(tmp_path / "other")
    other.close()
    shutil.copyfile(other.db_path, ws.db_path)
    for suffix in ("-wal", "-shm"):
        Path(str(ws.db_path) + suffix).unlink(missing_ok=True)
    with pytest.raises(WorkspaceError, match="belongs to workspace"):
        Workspace(ws.path)
    code, _, err = cli(capsys, "-w", str(ws.path), "gc")
    assert code == 1 and "belongs to workspace" in err
    assert blob.is_file()


def test_schema_without_tables_is_refused(tmp_path: Path) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    drop_database(ws.path, keep_empty_file=False)
    sqlite3.connect(ws.db_path).execute("CREATE TABLE unrelated (x)").connection.commit()
    with pytest.raises(WorkspaceError, match="no nbdeploy tables"):
        Workspace(ws.path)
    assert blob.is_file()


def test_lost_id_file_is_rewritten_from_the_database(tmp_path: Path) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    ws_id = (ws.path / "workspace.id").read_text().strip()
    (ws.path / "workspace.id").unlink()
    reopened = Workspace(ws.path)
    assert reopened.id == ws_id and (ws.path / "workspace.id").read_text().strip() == ws_id
    assert gc(reopened).blobs_kept == 1 and blob.is_file()


def test_gc_refuses_a_database_failing_its_integrity_check(tmp_path: Path, monkeypatch) -> None:
    ws, blob = registered(tmp_path, tmp_path / "ws")
    orphan_src = tmp_path / "orphan.bin"
    orphan_src.write_bytes(b"orphan")
    digest, _ = BlobStore(ws).put_file(orphan_src)
    real = Workspace.check_intact

    def failing(self: Workspace) -> None:  # the quick_check answer of a damaged file
        raise WorkspaceError(f"{self.db_path} fails its integrity check (page 3 is never used); nothing was deleted.")

    monkeypatch.setattr(Workspace, "check_intact", failing)
    with pytest.raises(WorkspaceError, match="integrity"):
        gc(ws)
    assert BlobStore(ws).has(digest) and blob.is_file()
    monkeypatch.setattr(Workspace, "check_intact", real)
    assert gc(ws).blobs_removed == 1


def test_check_intact_needs_the_id_file_to_match(tmp_path: Path) -> None:
    ws, _ = registered(tmp_path, tmp_path / "ws")
    ws.check_intact()
    (ws.path / "workspace.id").write_text("0" * 32 + "\n")
    with pytest.raises(WorkspaceError, match="Cannot prove"):
        ws.check_intact()


def test_concurrent_creation_yields_one_workspace(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    target.mkdir()
    wsmod._initialize(target)
    first_id = (target / "workspace.id").read_text()
    wsmod._initialize(target)  # a second creator that lost the race leaves the first database alone
    assert (target / "workspace.id").read_text() == first_id
    assert Workspace(target).id == first_id.strip()
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    ws, _ = registered(tmp_path, tmp_path / "ws")
    conn = Workspace(ws.path).db()
    conn.execute("SELECT COUNT(*) FROM models").fetchone()
    files = [ws.db_path, Path(str(ws.db_path) + "-wal"), Path(str(ws.db_path) + "-shm")]
    assert all(f.exists() for f in files)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_world_readable_database_of_an_older_workspace_is_restricted_on_open(tmp_path: Path) -> None:
    ws, _ = registered(tmp_path, tmp_path / "ws")
    for suffix in ("-wal", "-shm"):
        Path(str(ws.db_path) + suffix).unlink(missing_ok=True)
    os.chmod(ws.db_path, 0o644)
    Workspace(ws.path).db()
    assert stat.S_IMODE(ws.db_path.stat().st_mode) == 0o600


def test_migration_4_gives_an_id_and_drops_keys_from_the_history(tmp_path: Path, monkeypatch) -> None:
    ws_path = tmp_path / "old"  # a workspace as nbdeploy wrote it before migrations 3 and 4
    for sub in ("blobs", "tmp", "services", "cache"):
        (ws_path / sub).mkdir(parents=True)
    conn = sqlite3.connect(ws_path / "nbdeploy.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for _, script in wsmod.MIGRATIONS[:2]:
        for statement in wsmod._split_sql(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    spec = {"models": [], "deployment_config": {"computeType": "process", "authEnabled": True,
                                                "keys": {"primaryKey": "old-secret-1", "secondaryKey": "old-secret-2"}}}
    conn = sqlite3.connect(ws_path / "nbdeploy.db")
    conn.execute("INSERT INTO services(name, target, current_revision, keys, created_time, updated_time) "
                 "VALUES ('svc', 'process', 1, '[\"a\", \"b\"]', 't', 't')")
    conn.execute("INSERT INTO service_revisions(service, revision, outcome, spec, created_time) "
                 "VALUES ('svc', 1, 'serving', ?, 't')", (json.dumps(spec),))
    conn.commit()
    conn.close()
    ws = Workspace(ws_path)
    assert ws.db().execute("PRAGMA user_version").fetchone()[0] == schema_version() >= 4
    assert ws.id and (ws_path / "workspace.id").read_text().strip() == ws.id
    stored = json.loads(ws.db().execute("SELECT spec FROM service_revisions").fetchone()[0])
    assert "keys" not in stored["deployment_config"] and stored["deployment_config"]["authEnabled"] is True
    ws.db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.db().execute("VACUUM")
    assert b"old-secret-1" not in ws.db_path.read_bytes()
