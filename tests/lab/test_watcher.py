"""The workspace watcher in-process, on a real workspace database (no server, no engine).

Services here are records only (never started), so observing one is a database read: what is tested is
when the watcher re-reads and what it pushes, not an engine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nbdeploy import Model, Workspace
from nbdeploy.jupyter.watcher import WorkspaceWatcher
from nbdeploy.service_records import ServiceStore

from .conftest import wait_for


def _record(ws: Workspace, name: str) -> None:
    spec = {"models": ["m:1"], "inference_config": {}, "deployment_config": {"computeType": "process"}, "bundle": {}}
    ServiceStore(ws).create(name, "process", spec, ["m:1"], {}, {}, None, None)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    (tmp_path / "m.txt").write_text("x")
    Model.register(tmp_path / "m.txt", "m", workspace=ws)
    return ws


@pytest.fixture
def watched(ws: Workspace):  # type: ignore[no-untyped-def]
    watcher = WorkspaceWatcher(ws, check_s=0.02, fast_poll_s=3600, slow_poll_s=3600, linger_s=3600).start()
    events: list[dict[str, Any]] = []
    lock = threading.Lock()

    def keep(event: dict[str, Any]) -> None:
        with lock:
            events.append(event)
    unsubscribe = watcher.subscribe(keep)
    wait_for(lambda: any(e["type"] == "snapshot" for e in events), 10, what="the first snapshot")
    yield watcher, events
    unsubscribe()
    watcher.stop()


def test_nothing_changes_nothing_is_reread(watched) -> None:  # type: ignore[no-untyped-def]
    watcher, events = watched
    scans = watcher.scans
    time.sleep(0.5)  # ~25 checks of PRAGMA data_version
    assert watcher.scans == scans and len(events) == 1


def test_a_commit_from_another_connection_is_pushed_once(watched, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    watcher, events = watched
    other = Workspace(ws.path)  # another connection, as another process (a notebook, the CLI) has
    _record(other, "rec-svc")
    event = wait_for(lambda: next((e for e in events if e["type"] == "service"), None), 10, what="the service event")
    assert event["service"]["name"] == "rec-svc" and event["service"]["state"] == "Transitioning"
    assert event["service"]["reason"] == "starting" and event["service"]["models"] == ["m:1"]
    assert watcher.snapshot()[0]["name"] == "rec-svc"
    ServiceStore(other).delete("rec-svc")
    wait_for(lambda: {"type": "removed", "name": "rec-svc"} in events, 10, what="the removed event")
    assert [e["type"] for e in events] == ["snapshot", "service", "models", "removed", "models"]  # usage moved


def test_an_unrelated_commit_rescans_but_pushes_nothing_for_unchanged_services(watched, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    watcher, events = watched
    other = Workspace(ws.path)
    _record(other, "rec-svc")
    wait_for(lambda: len(events) == 3, 10, what="the service and models events")
    scans = watcher.scans
    Model.get("m", 1, workspace=other).add_tags({"stage": "prod"})
    wait_for(lambda: watcher.scans > scans, 10, what="a rescan")
    wait_for(lambda: {"type": "models"} in events, 10, what="the models event")
    assert [e["type"] for e in events] == ["snapshot", "service", "models", "models"]


def test_a_late_subscriber_gets_the_snapshot_first(watched, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    watcher, _ = watched
    _record(Workspace(ws.path), "rec-svc")
    wait_for(lambda: watcher.snapshot() and watcher.snapshot()[0]["name"] == "rec-svc", 10, what="the record")
    late: list[dict[str, Any]] = []
    unsubscribe = watcher.subscribe(late.append)
    assert late[0]["type"] == "snapshot" and [s["name"] for s in late[0]["services"]] == ["rec-svc"]
    unsubscribe()


def test_a_watcher_stops_a_while_after_its_last_subscriber(ws: Workspace) -> None:
    from nbdeploy.jupyter.watcher import subscribe_to, watcher_for

    unsubscribe = subscribe_to(ws, lambda e: None, check_s=0.02, linger_s=0.2)
    watcher = watcher_for(ws)
    assert watcher.running
    unsubscribe()
    wait_for(lambda: not watcher.running, 10, what="the watcher to stop")
    again = subscribe_to(ws, lambda e: None, check_s=0.02, linger_s=0.2)  # a fresh one starts
    assert watcher_for(ws) is not watcher and watcher_for(ws).running
    again()
