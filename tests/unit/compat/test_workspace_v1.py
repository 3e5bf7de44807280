"""v1's Workspace surface: config.json mapping, constructor and get/create signatures, attributes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbdeploy.compat.azureml.core import Workspace
from nbdeploy.compat.azureml.exceptions import NotSupportedInNbdeploy, ProjectSystemException
from nbdeploy.errors import WorkspaceError
from nbdeploy.workspace import Workspace as NbWorkspace

V1_CONFIG = {"subscription_id": "0000-sub", "resource_group": "rg-demo", "workspace_name": "ws-demo"}


def test_v1_config_json_maps_onto_the_default_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = NbWorkspace.create(tmp_path / "default-ws")
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(folder.path))
    (tmp_path / "config.json").write_text(json.dumps(V1_CONFIG))
    ws = Workspace.from_config()
    assert isinstance(ws, Workspace) and ws.path == folder.path and ws.source == "NBDEPLOY_WORKSPACE"
    assert (ws.name, ws.subscription_id, ws.resource_group, ws.location) == ("ws-demo", "0000-sub", "rg-demo", "local")
    details = ws.get_details()
    assert details["resourceGroup"] == "rg-demo" and details["workspacePath"] == str(folder.path)
    print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")  # what samples do


def test_v1_config_json_with_an_nbdeploy_folder_key(tmp_path: Path) -> None:
    NbWorkspace.create(tmp_path / "project" / "ws")
    (tmp_path / "project" / ".azureml").mkdir()
    (tmp_path / "project" / ".azureml" / "config.json").write_text(json.dumps({**V1_CONFIG, "nbdeploy_workspace": "../ws"}))
    (tmp_path / "project" / "notebooks").mkdir()
    import os

    os.chdir(tmp_path / "project" / "notebooks")  # found upward, in .azureml/ as v1 does
    ws = Workspace.from_config()
    assert ws.path == tmp_path / "project" / "ws" and ws.name == "ws-demo"


def test_unrelated_config_json_is_skipped_while_searching(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.write_config(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text(json.dumps({"some_other_tool": 1}))
    import os

    os.chdir(tmp_path / "sub")
    assert Workspace.from_config().path == ws.path


def test_nbdeploy_config_json_still_works_and_write_config_round_trips(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", subscription_id="s", resource_group="g")
    config = ws.write_config()
    doc = json.loads(config.read_text())
    assert doc["workspace"] == str(ws.path) and doc["resource_group"] == "g" and doc["workspace_name"] == "ws"
    again = Workspace.from_config(config)
    assert again == ws and again.resource_group == "g" and again.subscription_id == "s"
    (tmp_path / "old.json").write_text(json.dumps({"workspace": str(ws.path)}))  # the nbdeploy form
    assert Workspace.from_config(tmp_path / "old.json").path == ws.path


def test_no_config_is_both_a_v1_and_an_nbdeploy_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectSystemException) as info:
        Workspace.from_config()
    assert isinstance(info.value, WorkspaceError) and "workspace_name" in str(info.value)


def test_constructor_get_and_create_signatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = NbWorkspace.create(tmp_path / "default")
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(default.path))
    ws = Workspace(subscription_id="sub", resource_group="rg", workspace_name="named")
    assert ws.path == default.path and ws.name == "named" and ws.resource_group == "rg"
    assert Workspace("sub", "rg", "named").name == "named"
    assert Workspace(str(default.path)).path == default.path  # one argument: nbdeploy's path form
    got = Workspace.get(name="named", subscription_id="sub", resource_group="rg")
    assert got.path == default.path and got.name == "named"
    other = Workspace.create(tmp_path / "other", subscription_id="sub", resource_group="rg", location="westeurope", exist_ok=True)
    assert other.location == "westeurope" and other.name == "other"
    assert Workspace.get(str(other.path)).path == other.path  # a folder that is a workspace
    with pytest.raises(WorkspaceError):
        Workspace.get("./missing-folder")  # looks like a path: not silently the default


def test_collections_and_refusals(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.compute_targets == {} and ws.webservices == {} and ws.models == {}
    with pytest.raises(NotSupportedInNbdeploy, match="datastores"):
        ws.get_default_datastore()
    with pytest.raises(AttributeError):
        ws.no_such_thing  # noqa: B018
