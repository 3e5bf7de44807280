"""``CondaDependencies``: the v1 conda specification object (channels, conda and pip packages)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from nbdeploy.errors import InvalidInput, InvalidSpec

DEFAULT_PYTHON = "3.11"


class CondaDependencies:
    """A conda environment specification, as ``azureml.core.conda_dependencies.CondaDependencies``."""

    def __init__(
        self,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        _underlying_structure: dict[str, Any] | None = None,
    ) -> None:
        if conda_dependencies_file_path is not None:
            path = Path(conda_dependencies_file_path)
            if not path.is_file():
                raise InvalidInput(
                    f"Conda specification {path} does not exist; pass the path of an environment.yml file."
                )
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise InvalidSpec(str(path), f"not valid YAML: {exc}") from exc
        else:
            data = copy.deepcopy(_underlying_structure) if _underlying_structure else {}
        if not isinstance(data, dict):
            raise InvalidSpec("conda specification", "must be a mapping with name/channels/dependencies")
        data.setdefault("name", "project_environment")
        data.setdefault("channels", ["conda-forge"])
        data.setdefault("dependencies", [])
        if not isinstance(data["dependencies"], list):
            raise InvalidSpec("dependencies", "must be a list")
        self._conda = data

    @classmethod
    def create(
        cls,
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """A new specification with the given packages (v1 signature; ``pin_sdk_version`` is accepted and ignored)."""
        deps = cls()
        deps.set_python_version(python_version or DEFAULT_PYTHON)
        for package in conda_packages or []:
            deps.add_conda_package(package)
        for package in pip_packages or []:
            deps.add_pip_package(package)
        if pip_indexurl:
            deps.set_pip_option(f"--index-url {pip_indexurl}")
        return deps

    # -- reading ---------------------------------------------------------------------------------
    def _pip_section(self, create: bool = False) -> list[str] | None:
        for item in self._conda["dependencies"]:
            if isinstance(item, dict) and "pip" in item:
                return item["pip"]
        if create:
            section: list[str] = []
            self._conda["dependencies"].append({"pip": section})
            return section
        return None

    @property
    def pip_packages(self) -> list[str]:
        """pip requirement lines (options such as ``--index-url`` excluded)."""
        return [p for p in (self._pip_section() or []) if not str(p).startswith("-")]

    @property
    def pip_options(self) -> list[str]:
        """pip option lines such as ``--index-url URL``."""
        return [p for p in (self._pip_section() or []) if str(p).startswith("-")]

    @property
    def conda_packages(self) -> list[str]:
        """conda packages, without the python pin."""
        return [d for d in self._conda["dependencies"] if isinstance(d, str) and not _is_python(d)]

    @property
    def conda_channels(self) -> list[str]:
        return list(self._conda["channels"])

    def get_python_version(self) -> str | None:
        for dep in self._conda["dependencies"]:
            if isinstance(dep, str) and _is_python(dep):
                _, _, version = dep.partition("=")
                return version.lstrip("=") or None
        return None

    # -- changing --------------------------------------------------------------------------------
    def add_pip_package(self, pip_package: str) -> None:
        section = self._pip_section(create=True)
        assert section is not None
        name = _requirement_name(pip_package)
        section[:] = [p for p in section if _requirement_name(p) != name] + [pip_package]

    def remove_pip_package(self, pip_package: str) -> None:
        section = self._pip_section()
        if section is not None:
            name = _requirement_name(pip_package)
            section[:] = [p for p in section if _requirement_name(p) != name]

    def add_conda_package(self, conda_package: str) -> None:
        name = _requirement_name(conda_package)
        deps = self._conda["dependencies"]
        deps[:] = [d for d in deps if not (isinstance(d, str) and _requirement_name(d) == name)]
        deps.insert(len([d for d in deps if isinstance(d, str)]), conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        name = _requirement_name(conda_package)
        self._conda["dependencies"] = [
            d for d in self._conda["dependencies"] if not (isinstance(d, str) and _requirement_name(d) == name)
        ]

    def add_channel(self, channel: str) -> None:
        if channel not in self._conda["channels"]:
            self._conda["channels"].append(channel)

    def set_python_version(self, version: str) -> None:
        deps = [d for d in self._conda["dependencies"] if not (isinstance(d, str) and _is_python(d))]
        self._conda["dependencies"] = [f"python={version}"] + deps

    def set_pip_option(self, pip_option: str) -> None:
        section = self._pip_section(create=True)
        assert section is not None
        key = pip_option.split()[0]
        section[:] = [pip_option] + [p for p in section if not str(p).startswith(key)]

    # -- serializing -----------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._conda)

    def serialize_to_string(self) -> str:
        return yaml.safe_dump(self._conda, sort_keys=False)

    def save(self, path: str | os.PathLike[str]) -> str:
        Path(path).write_text(self.serialize_to_string())
        return str(path)

    save_to_file = save

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and self._conda == other._conda

    def __repr__(self) -> str:
        return (
            f"CondaDependencies(pip={self.pip_packages!r}, conda={self.conda_packages!r}, "
            f"python={self.get_python_version()!r})"
        )


def _is_python(dep: str) -> bool:
    return _requirement_name(dep) == "python"


def _requirement_name(requirement: str) -> str:
    name = str(requirement).strip()
    for sep in ("[", "=", "<", ">", "!", "~", ";", " ", "@"):
        name = name.split(sep, 1)[0]
    return name.lower().replace("_", "-")
