"""Named environments saved in the workspace (``environments/<name>.yml``), as ``%%environment`` defines them."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from nbdeploy.errors import EnvironmentNotFound
from nbdeploy.specs.environment import Environment
from nbdeploy.workspace import Workspace


def _folder(workspace: Workspace) -> Path:
    return workspace.path / "environments"


def save_environment(workspace: Workspace, environment: Environment) -> Path:
    """Save (or replace) ``environment`` under its name; returns the file."""
    workspace.ensure()
    folder = _folder(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{environment.name}.yml"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(environment.to_dict(), sort_keys=False))
    os.replace(tmp, target)
    return target


def environment_names(workspace: Workspace) -> list[str]:
    folder = _folder(workspace)
    return sorted(p.stem for p in folder.glob("*.yml")) if folder.is_dir() else []


def load_environment(workspace: Workspace, name_or_file: str) -> Environment:
    """A saved environment by name, or an environment file (short YAML form or v1 JSON)."""
    path = Path(name_or_file)
    if path.suffix in (".yml", ".yaml", ".json") and path.is_file():
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and (("python" in data and isinstance(data["python"], dict)) or "docker" in data):
            return Environment.from_v1_document(data, source=str(path))
        return Environment.from_yaml(path.read_text(), name=path.stem, source=str(path))
    target = _folder(workspace) / f"{name_or_file}.yml"
    if not target.is_file():
        raise EnvironmentNotFound(
            name_or_file, environment_names(workspace), hint="Define it with %%environment NAME or pass a YAML file."
        )
    return Environment.from_stored_dict(yaml.safe_load(target.read_text()))
