"""Keys given at deploy time never stay in the revision history, and replaced keys leave the database file
(issue 11 item 11). Real SQLite database in a real workspace; no engine needed."""

from __future__ import annotations

import json
from pathlib import Path

from nbdeploy.service_records import ServiceStore
from nbdeploy.workspace import Workspace

OLD = ("deploy-time-primary-1", "deploy-time-secondary-2")
NEW = ("regenerated-primary-3-" + "r" * 40, "deploy-time-secondary-2")


def spec_with_keys(keys: tuple[str, str]) -> dict:
    return {"models": ["m:1"], "deployment_config": {"computeType": "process", "authEnabled": True,
                                                     "keys": {"primaryKey": keys[0], "secondaryKey": keys[1]}}}


def database_bytes(ws: Workspace) -> bytes:
    ws.db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = ws.db_path.read_bytes()
    wal = Path(str(ws.db_path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_history_never_keeps_keys_and_regen_erases_the_old_one(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    store = ServiceStore(ws)
    store.create("svc", "process", spec_with_keys(OLD), [], {}, {}, None, OLD)
    revision = store.add_revision("svc", spec_with_keys(OLD))
    for rec in store.revisions("svc"):
        assert "keys" not in rec.spec["deployment_config"] and rec.spec["deployment_config"]["authEnabled"] is True
    assert store.get("svc").keys == OLD
    store.set_keys("svc", NEW)
    assert store.get("svc").keys == NEW and revision == 2
    raw = database_bytes(ws)
    assert OLD[0].encode() not in raw  # neither in the history nor in freed pages
    assert NEW[0].encode() in raw


def test_stored_revision_spec_keeps_everything_else(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    store = ServiceStore(ws)
    spec = spec_with_keys(OLD)
    spec["deployment_config"]["port"] = 6789
    store.create("svc", "process", spec, [], {}, {}, None, OLD)
    stored = json.loads(ws.db().execute("SELECT spec FROM service_revisions").fetchone()[0])
    assert stored == {"models": ["m:1"], "deployment_config": {"computeType": "process", "authEnabled": True, "port": 6789}}
    assert spec["deployment_config"]["keys"]["primaryKey"] == OLD[0]  # the caller's dict is not changed
