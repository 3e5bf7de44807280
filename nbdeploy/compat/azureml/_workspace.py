"""v1's ``Workspace`` on top of nbdeploy's workspace folder.

A v1 workspace is a cloud resource named by subscription, resource group and name; an nbdeploy workspace is a
folder. The v1 names are kept as attributes (so ``print(ws.name, ws.resource_group, ...)`` works) and the
folder behind them is found as nbdeploy finds it: an explicit path, a ``"nbdeploy_workspace"`` (or
``"workspace"``) key in ``config.json``, else the default (``NBDEPLOY_WORKSPACE``, ``.nbdeploy/`` upward,
``~/.nbdeploy``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from nbdeploy.compat.azureml.exceptions import (
    NotSupportedInNbdeploy,
    ProjectSystemException,
    UserErrorException,
    raises_v1,
)
from nbdeploy.errors import WorkspaceError
from nbdeploy.workspace import CONFIG_NAME
from nbdeploy.workspace import Workspace as _Workspace

log = logging.getLogger(__name__)

#: Where v1 looks for config.json in a folder (its own order).
CONFIG_PLACES = (CONFIG_NAME, os.path.join(".azureml", CONFIG_NAME), os.path.join("aml_config", CONFIG_NAME))
#: Keys of a v1 config.json naming the nbdeploy folder behind it.
FOLDER_KEYS = ("nbdeploy_workspace", "workspace")

_UNSUPPORTED = {
    "datastores": "datastores are Azure storage accounts",
    "get_default_datastore": "datastores are Azure storage accounts",
    "set_default_datastore": "datastores are Azure storage accounts",
    "experiments": "training runs are not part of nbdeploy, which covers deployment",
    "get_run": "training runs are not part of nbdeploy, which covers deployment",
    "linked_services": "linked services are Azure resources",
    "private_endpoints": "private endpoints are Azure networking",
    "get_mlflow_tracking_uri": "MLflow tracking is not part of nbdeploy",
    "keyvault": "Key Vault is an Azure service; use environment variables or your own secret store",
    "get_default_keyvault": "Key Vault is an Azure service; use environment variables or your own secret store",
}


class Workspace(_Workspace):
    """v1's ``Workspace``: ``Workspace.from_config()``, ``Workspace.get(name, ...)``, ``Workspace(sub, rg, name)``.

    ``Workspace(path)`` (one argument) opens the nbdeploy folder at ``path``, as before.
    """

    def __init__(
        self,
        subscription_id: str | os.PathLike[str] | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        v1_call = resource_group is not None or workspace_name is not None
        if not v1_call and path is None and subscription_id is not None:
            path, subscription_id = subscription_id, None  # Workspace(path): nbdeploy's own form
        super().__init__(path)
        self.subscription_id: str = str(subscription_id or "")
        self.resource_group: str = resource_group or ""
        self.location: str = _location or "local"
        self.sku: str = sku
        self.tags: dict[str, str] = dict(tags or {})
        self._v1_name = workspace_name
        if v1_call:
            log.info(
                "v1 workspace %r (subscription %r, resource group %r) maps to the nbdeploy workspace %s (%s)",
                workspace_name,
                self.subscription_id,
                self.resource_group,
                self.path,
                self.source,
            )

    # -- v1 attributes ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The v1 name (``workspace_name`` of config.json), else the folder's name."""
        return self._v1_name or self.path.name

    @property
    def friendly_name(self) -> str:
        return self.name

    @property
    def discovery_url(self) -> None:
        return None

    @property
    def service_context(self) -> None:
        return None

    def get_details(self) -> dict[str, Any]:
        """v1's details dict (the keys samples print) plus the folder."""
        return {
            "id": str(self.path),
            "name": self.name,
            "location": self.location,
            "resourceGroup": self.resource_group,
            "subscriptionId": self.subscription_id,
            "sku": self.sku,
            "tags": self.tags,
            "friendlyName": self.name,
            "workspacePath": str(self.path),
            "foundBy": self.source,
        }

    @property
    def compute_targets(self) -> dict[str, Any]:
        """Attached compute targets by name."""
        from nbdeploy.compat.azureml._compute import ComputeTarget

        return {t.name: t for t in ComputeTarget.list(self)}

    @property
    def webservices(self) -> dict[str, Any]:
        from nbdeploy.compat.azureml._v1 import Webservice

        return {s.name: s for s in Webservice.list(self)}

    @property
    def models(self) -> dict[str, Any]:
        """The latest version of each model, by name."""
        from nbdeploy.compat.azureml._v1 import Model

        return {m.name: m for m in Model.list(self, latest=True)}

    @property
    def environments(self) -> dict[str, Any]:
        from nbdeploy.specs.environment_store import environment_names, load_environment

        return {n: load_environment(self, n) for n in environment_names(self)}

    def __getattr__(self, item: str) -> Any:
        why = _UNSUPPORTED.get(item)
        if why is not None:
            raise NotSupportedInNbdeploy(f"Workspace.{item} is not available in nbdeploy: {why}.")
        raise AttributeError(f"'Workspace' object has no attribute {item!r}")

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    @raises_v1(ProjectSystemException)
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """Read a ``config.json``: v1's (subscription_id, resource_group, workspace_name) or nbdeploy's.

        ``path`` is the file or a folder; without it the current folder and its parents are searched
        (``config.json``, ``.azureml/config.json``, ``aml_config/config.json``, as v1 does).
        """
        config = _find_config(Path(path) if path is not None else None, _file_name)
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"Cannot read workspace config {config}: {exc}") from exc
        if not isinstance(data, dict):
            raise WorkspaceError(f"{config} is not a JSON object.")
        folder = next((data[k] for k in FOLDER_KEYS if isinstance(data.get(k), str)), None)
        target: Path | None = None
        if folder is not None:
            target = Path(folder).expanduser()
            target = target if target.is_absolute() else Path(os.path.normpath(config.parent.absolute() / target))
        elif not any(k in data for k in ("subscription_id", "resource_group", "workspace_name")):
            raise WorkspaceError(
                f'{config} names no workspace: add "workspace_name" (v1) or "nbdeploy_workspace": "<folder>".'
            )
        ws = cls(
            data.get("subscription_id"),
            data.get("resource_group") or "",
            data.get("workspace_name"),
            _location=data.get("location"),
            path=target,
        )
        log.info("workspace from %s: %s (%s)", config, ws.path, ws.source)
        return ws

    @classmethod
    @raises_v1(ProjectSystemException)
    def get(
        cls,
        name: str | os.PathLike[str] | None = None,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,  # noqa: A002 - v1's name
    ) -> Workspace:
        """``name`` is an nbdeploy folder (a path that is a workspace), else a v1 name for the default workspace."""
        if name is not None and (_is_workspace_folder(name) or _looks_like_path(name)):
            ws = cls(path=name)
            ws.subscription_id, ws.resource_group, ws.location = (
                subscription_id or "",
                resource_group or "",
                location or "local",
            )
            return ws
        return cls(subscription_id, resource_group or "", None if name is None else str(name), _location=location)

    @classmethod
    @raises_v1(UserErrorException)
    def create(  # type: ignore[override]  # v1's signature
        cls,
        name: str | os.PathLike[str],
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        create_resource_group: bool = True,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        friendly_name: str | None = None,
        storage_account: Any = None,
        key_vault: Any = None,
        app_insights: Any = None,
        container_registry: Any = None,
        cmk_keyvault: Any = None,
        resource_cmk_uri: Any = None,
        hbi_workspace: bool = False,
        default_cpu_compute_target: Any = None,
        default_gpu_compute_target: Any = None,
        private_endpoint_config: Any = None,
        private_endpoint_auto_approval: bool = True,
        exist_ok: bool = False,
        show_output: bool = True,
        user_assigned_identity_for_cmk_encryption: Any = None,
        system_datastores_auth_mode: str = "accessKey",
        v1_legacy_mode: Any = None,
    ) -> Workspace:
        """Create the workspace folder ``name`` (a path, relative to the current folder); keeps cloud arguments."""
        created = _Workspace.create(name, exist_ok=exist_ok)
        ws = cls(path=created.path)
        ws.subscription_id, ws.resource_group, ws.location = (
            subscription_id or "",
            resource_group or "",
            location or "local",
        )
        ws.sku, ws.tags = sku, dict(tags or {})
        return ws

    @staticmethod
    def list(
        subscription_id: str | None = None, auth: Any = None, resource_group: str | None = None
    ) -> dict[str, list[Workspace]]:
        """The workspace nbdeploy would use here (v1 lists a subscription's workspaces)."""
        ws = Workspace()
        return {ws.name: [ws]}

    def write_config(self, path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> Path:
        """Write ``config.json`` with v1's keys and the folder (``"workspace"``) into ``path`` (default: cwd)."""
        folder = Path(path).expanduser().absolute() if path is not None else Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / (file_name or CONFIG_NAME)
        doc = {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.name,
            "workspace": str(self.path),
        }
        config.write_text(json.dumps(doc, indent=2) + "\n")
        return config

    def delete(self, delete_dependent_resources: bool = False, no_wait: bool = False) -> None:
        raise NotSupportedInNbdeploy(
            f"Workspace.delete is refused: remove the folder {self.path} yourself if you mean it."
        )

    def __repr__(self) -> str:
        return (
            f"Workspace.create(name={self.name!r}, subscription_id={self.subscription_id!r}, "
            f"resource_group={self.resource_group!r})  # folder {self.path}"
        )


def _looks_like_path(name: str | os.PathLike[str]) -> bool:
    text = os.fspath(name)
    return os.sep in text or text.startswith(("~", "."))


def _is_workspace_folder(name: str | os.PathLike[str]) -> bool:
    from nbdeploy.workspace import DB_NAME

    return (Path(name).expanduser() / DB_NAME).is_file()


def _find_config(path: Path | None, file_name: str | None) -> Path:
    names = (file_name,) if file_name else CONFIG_PLACES
    if path is not None:
        path = path.expanduser().absolute()
        if path.is_file():
            return path
        for rel in names:
            if (path / rel).is_file():
                return path / rel
        raise WorkspaceError(f"No workspace config file in {path} (looked for {', '.join(names)}).")
    here = Path.cwd()
    for folder in (here, *here.parents):
        for rel in names:
            if (folder / rel).is_file() and _names_a_workspace(folder / rel):
                return folder / rel
    raise WorkspaceError(
        f"No {CONFIG_NAME} naming a workspace found in {here} or its parents. Write one with ws.write_config(), or put "
        'v1\'s {"subscription_id": ..., "resource_group": ..., "workspace_name": ...} there (add "nbdeploy_workspace": '
        '"<folder>" to choose the folder; without it the default workspace is used).'
    )


def _names_a_workspace(config: Path) -> bool:
    """Whether a config.json found while searching is a workspace config (other tools' config.json are skipped)."""
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and any(k in data for k in (*FOLDER_KEYS, "workspace_name", "subscription_id"))
