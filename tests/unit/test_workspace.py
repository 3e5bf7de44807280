from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import nbdeploy.workspace as wsmod
from nbdeploy.errors import AlreadyExists, WorkspaceError
from nbdeploy.registry import Model
from nbdeploy.workspace import Workspace, as_workspace, schema_version


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def test_create_lays_out_the_folder(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    for sub in ("blobs", "tmp", "services", "cache"):
        assert (ws.path / sub).is_dir()
    conn = ws.db()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version() >= 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"models", "model_files", "model_tags", "model_properties", "model_usage"} <= tables
    assert ws.service_dir("svc") == ws.path / "services" / "svc" and not ws.service_dir("svc").exists()
    assert ws.service_dir("svc", create=True).is_dir()


def test_create_twice(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws")
    with pytest.raises(AlreadyExists):
        Workspace.create(tmp_path / "ws")
    assert Workspace.create(tmp_path / "ws", exist_ok=True).path == tmp_path / "ws"


def test_create_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.create(tmp_path / "proj")
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["notes.txt"]


def test_folder_that_is_not_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(WorkspaceError, match="not an nbdeploy workspace"):
        Workspace(tmp_path / "plain")
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "plain").iterdir()) == []


def test_garbage_database_is_a_workspace_error(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "nbdeploy.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError, match="not a usable nbdeploy database"):
        Workspace(tmp_path / "bad")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.db().execute(f"PRAGMA user_version = {schema_version() + 5}")
    ws.close()
    with pytest.raises(WorkspaceError, match="upgrade nbdeploy"):
        Workspace(tmp_path / "ws")


def test_appended_migration_runs_once_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.create(tmp_path / "ws").close()
    calls: list[int] = []

    def step(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("INSERT INTO extra VALUES (1)")

    nxt = schema_version() + 1
    monkeypatch.setattr(wsmod, "MIGRATIONS", [*wsmod.MIGRATIONS, (nxt, "CREATE TABLE extra (x INTEGER);\n"),
                                              (nxt + 1, step)])
    ws = Workspace(tmp_path / "ws")
    assert ws.db().execute("PRAGMA user_version").fetchone()[0] == nxt + 1
    assert [tuple(r) for r in ws.db().execute("SELECT x FROM extra")] == [(1,)]
    Workspace(tmp_path / "ws")
    assert calls == [1]


def test_failing_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.create(tmp_path / "ws").close()
    nxt = schema_version() + 1
    monkeypatch.setattr(wsmod, "MIGRATIONS", [*wsmod.MIGRATIONS, (nxt, "CREATE TABLE t1 (x);\nCREATE TABLE t1 (x);\n")])
    with pytest.raises(WorkspaceError):
        Workspace(tmp_path / "ws")
    conn = sqlite3.connect(tmp_path / "ws" / "nbdeploy.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == nxt - 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 't1'").fetchone()[0] == 0


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated: Path) -> None:
    explicit = Workspace.create(tmp_path / "explicit")
    env = Workspace.create(tmp_path / "env")
    project = tmp_path / "project"
    Workspace.create(project / ".nbdeploy")
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(env.path))
    assert Workspace(explicit.path).path == explicit.path
    assert (Workspace.get_default().path, Workspace.get_default().source) == (env.path, "NBDEPLOY_WORKSPACE")
    monkeypatch.delenv("NBDEPLOY_WORKSPACE")
    assert (Workspace.get_default().path, Workspace.get_default().source) == (project / ".nbdeploy", ".nbdeploy upward")
    monkeypatch.chdir(tmp_path)
    assert Workspace.get_default().path == _isolated / ".nbdeploy"


def test_upward_folder_that_is_not_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p" / ".nbdeploy").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "p")
    with pytest.raises(WorkspaceError, match="not an nbdeploy workspace"):
        Workspace.get_default()


def test_home_default_reads_as_empty_without_creating(tmp_path: Path, _isolated: Path) -> None:
    assert Model.list() == []
    assert Model.list(workspace=None, tags=["a"]) == []
    assert not (_isolated / ".nbdeploy").exists()
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    m = Model.register(src, "m")  # the first write creates it
    assert (_isolated / ".nbdeploy" / "nbdeploy.db").is_file()
    assert m.workspace.path == _isolated / ".nbdeploy"
    assert [x.id for x in Model.list()] == ["m:1"]
    assert Workspace(_isolated / ".nbdeploy").path == _isolated / ".nbdeploy"


def test_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create(tmp_path / "store" / "ws")
    cfg = ws.write_config(tmp_path / "proj")
    assert json.loads(cfg.read_text()) == {"workspace": str(ws.path)}
    assert Workspace.from_config(cfg).path == ws.path
    assert Workspace.from_config(tmp_path / "proj").path == ws.path
    (tmp_path / "proj" / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "proj" / "sub" / "config.json").write_text('{"unrelated": true}')  # skipped while searching
    monkeypatch.chdir(tmp_path / "proj" / "sub" / "deeper")
    assert Workspace.from_config().path == ws.path
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "config.json").write_text('{"workspace": "../store/ws"}')
    assert Workspace.from_config(tmp_path / "rel" / "config.json").path.resolve() == ws.path.resolve()


def test_from_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WorkspaceError, match="No workspace config"):
        Workspace.from_config(tmp_path / "nothing.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match="Cannot read"):
        Workspace.from_config(tmp_path / "c.json")
    (tmp_path / "d.json").write_text('{"other": 1}')
    with pytest.raises(WorkspaceError, match='"workspace"'):
        Workspace.from_config(tmp_path / "d.json")
    (tmp_path / "e.json").write_text(json.dumps({"workspace": str(tmp_path / "nope")}))
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace.from_config(tmp_path / "e.json")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    with pytest.raises(WorkspaceError, match="No config.json"):
        Workspace.from_config()


def test_as_workspace_forms(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert as_workspace(ws) is ws
    assert as_workspace(str(ws.path)) == ws == as_workspace(ws.path)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(RuntimeError):
        with ws.transaction() as conn:
            conn.execute("INSERT INTO model_usage VALUES ('m:1', 's')")
            raise RuntimeError
    assert ws.db().execute("SELECT COUNT(*) FROM model_usage").fetchone()[0] == 0
