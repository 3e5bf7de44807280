"""``Environment``: the Python packages, base image, variables and package-index settings of a deployment.

The attribute shape follows Azure ML SDK v1 (``env.python.conda_dependencies``, ``env.docker.base_image``,
``env.environment_variables``) so v1 notebooks keep working; the YAML form used by ``%%environment`` is
the short one::

    name: sklearn-env
    pip: [scikit-learn==1.9.*, joblib]
    python: "3.11"
    base_image: python:3.11-slim
    variables: {OMP_NUM_THREADS: "1"}
    pip_index_url: https://pypi.example.com/simple
    ca_certificates: [/etc/ssl/certs/corp-ca.pem]
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nbdeploy.errors import InvalidInput, InvalidSpec
from nbdeploy.specs.conda import CondaDependencies

ENV_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
YAML_KEYS = {
    "name",
    "version",
    "pip",
    "conda",
    "channels",
    "python",
    "requirements",
    "base_image",
    "base_dockerfile",
    "variables",
    "environment_variables",
    "pip_index_url",
    "pip_extra_index_urls",
    "pip_trusted_hosts",
    "ca_certificates",
    "user_managed_dependencies",
    "gpu",
    "system_packages",
}


@dataclass
class PythonSection:
    """v1's ``Environment.python``."""

    conda_dependencies: CondaDependencies = field(default_factory=CondaDependencies.create)
    user_managed_dependencies: bool = False
    """True: use the interpreter as it is (the process target's default), install nothing."""
    interpreter_path: str | None = None
    conda_dependencies_file: str | None = None
    base_conda_environment: str | None = None


@dataclass
class DockerSection:
    """v1's ``Environment.docker`` (used by the image targets)."""

    base_image: str | None = None
    base_dockerfile: str | None = None
    base_image_registry: Any = None
    enabled: bool = True
    shm_size: str = "2g"
    arguments: list[str] = field(default_factory=list)
    gpu_support: bool = False
    system_packages: list[str] = field(default_factory=list)


@dataclass
class PipOptions:
    """Package-index settings for builds behind corporate proxies and mirrors."""

    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    trusted_hosts: list[str] = field(default_factory=list)
    ca_certificates: list[str] = field(default_factory=list)
    """Paths of extra PEM CA bundles trusted by pip during builds."""


class Environment:
    """The software environment a service runs in."""

    def __init__(self, name: str, version: str | None = None) -> None:
        if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
            raise InvalidSpec(
                "environment name", f"{name!r} must start with a letter or digit and use letters, digits, '.', '_', '-'"
            )
        self.name = name
        self.version = version
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}
        self.pip_options = PipOptions()
        self.inferencing_stack_version: str | None = None

    # -- convenient views ------------------------------------------------------------------------
    @property
    def pip_packages(self) -> list[str]:
        return self.python.conda_dependencies.pip_packages

    @property
    def conda_packages(self) -> list[str]:
        return self.python.conda_dependencies.conda_packages

    @property
    def python_version(self) -> str | None:
        return self.python.conda_dependencies.get_python_version()

    # -- factories -------------------------------------------------------------------------------
    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
    ) -> Environment:
        """An environment whose pip packages are the lines of a requirements file."""
        env = cls(name)
        for line in _read_requirements(Path(file_path)):
            env.python.conda_dependencies.add_pip_package(line)
        if pip_version:
            env.python.conda_dependencies.add_conda_package(f"pip={pip_version}")
        return env

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda ``environment.yml``."""
        env = cls(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        env.python.conda_dependencies_file = str(file_path)
        return env

    @classmethod
    def from_current_kernel(
        cls,
        name: str,
        entry_script: str | os.PathLike[str] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        packages: Sequence[str] = (),
    ) -> Environment:
        """Pin the packages that the entry script (and its source folder) import, at the versions installed here.

        Without an entry script, pins every installed distribution that is importable at top level
        and imported in this process (``sys.modules``). ``packages`` adds distributions the script needs
        without importing them, e.g. ``["scikit-learn"]`` for a model that ``joblib.load`` unpickles.
        """
        from importlib import metadata

        modules: set[str] = set()
        if entry_script is not None:
            files = [Path(entry_script)]
            if source_directory is not None:
                files = [Path(source_directory) / entry_script] + sorted(Path(source_directory).rglob("*.py"))
            for file in files:
                if file.is_file():
                    modules |= _imported_top_level_modules(file.read_text(encoding="utf-8", errors="replace"))
        else:
            modules = {m.partition(".")[0] for m in sys.modules}
        dist_of = metadata.packages_distributions()
        pins: dict[str, str] = {}
        for module in sorted(modules):
            if module in sys.stdlib_module_names:
                continue
            for dist in dist_of.get(module, []):
                try:
                    pins[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:  # pragma: no cover - raced uninstall
                    continue
        for dist in packages:
            try:
                pins[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError as exc:
                raise InvalidInput(
                    f"packages: {dist!r} is not installed in this kernel; install it or pin it with pip: [...]"
                ) from exc
        env = cls(name)
        env.python.conda_dependencies.set_python_version(f"{sys.version_info.major}.{sys.version_info.minor}")
        for dist, version in sorted(pins.items()):
            env.python.conda_dependencies.add_pip_package(f"{dist}=={version}")
        return env

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Environment:
        """Read the short YAML/dict form (see module docstring)."""
        if not isinstance(data, dict):
            raise InvalidSpec("environment", "must be a mapping", source=source)
        unknown = set(data) - YAML_KEYS
        if unknown:
            raise InvalidSpec(sorted(unknown)[0], "unknown environment key", allowed=YAML_KEYS, source=source)
        if "name" not in data:
            raise InvalidSpec("name", "an environment needs a name", source=source)
        env = cls(str(data["name"]), data.get("version"))
        conda = data.get("conda")
        deps = env.python.conda_dependencies
        if isinstance(conda, str):
            env.python.conda_dependencies = deps = CondaDependencies(conda)
        elif isinstance(conda, dict):
            env.python.conda_dependencies = deps = CondaDependencies(_underlying_structure=conda)
        elif isinstance(conda, list):
            for package in conda:
                deps.add_conda_package(str(package))
        elif conda is not None:
            raise InvalidSpec("conda", "must be a list of packages, a conda mapping or a file path", source=source)
        for channel in _as_list(data.get("channels"), "channels", source):
            deps.add_channel(channel)
        if data.get("python"):
            deps.set_python_version(str(data["python"]))
        if data.get("requirements"):
            for line in _read_requirements(Path(data["requirements"])):
                deps.add_pip_package(line)
        for package in _as_list(data.get("pip"), "pip", source):
            deps.add_pip_package(package)
        env.docker.base_image = data.get("base_image")
        env.docker.base_dockerfile = data.get("base_dockerfile")
        if env.docker.base_image and env.docker.base_dockerfile:
            raise InvalidSpec("base_image", "base_image and base_dockerfile cannot both be set", source=source)
        env.docker.gpu_support = bool(data.get("gpu", False))
        env.docker.system_packages = _as_list(data.get("system_packages"), "system_packages", source)
        variables = data.get("variables", data.get("environment_variables")) or {}
        if not isinstance(variables, dict):
            raise InvalidSpec("variables", "must be a mapping of NAME: value", source=source)
        env.environment_variables = {str(k): str(v) for k, v in variables.items()}
        env.python.user_managed_dependencies = bool(data.get("user_managed_dependencies", False))
        env.pip_options = PipOptions(
            index_url=data.get("pip_index_url"),
            extra_index_urls=_as_list(data.get("pip_extra_index_urls"), "pip_extra_index_urls", source),
            trusted_hosts=_as_list(data.get("pip_trusted_hosts"), "pip_trusted_hosts", source),
            ca_certificates=_as_list(data.get("ca_certificates"), "ca_certificates", source),
        )
        for ca in env.pip_options.ca_certificates:
            if not Path(ca).is_file():
                raise InvalidSpec("ca_certificates", f"{ca} does not exist", source=source)
        return env

    @classmethod
    def from_yaml(cls, text: str, name: str | None = None, source: str | None = None) -> Environment:
        """Read the short YAML form; ``name`` fills in a missing ``name:``."""
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InvalidSpec("environment", f"not valid YAML: {exc}", source=source) from exc
        if not isinstance(data, dict):
            raise InvalidSpec("environment", "must be a YAML mapping (pip: [...], variables: {...})", source=source)
        if name is not None:
            data.setdefault("name", name)
        return cls.from_dict(data, source=source)

    # -- v1 document (inferenceconfig.json "environment") ------------------------------------------
    @classmethod
    def from_v1_document(cls, doc: dict[str, Any], source: str | None = None) -> Environment:
        """Read the Environment document of v1's inferenceconfig.json / environment JSON."""
        env = cls(str(doc.get("name") or "inline-environment"), doc.get("version"))
        python = doc.get("python") or {}
        conda = python.get("condaDependencies")
        if conda:
            env.python.conda_dependencies = CondaDependencies(_underlying_structure=conda)
        elif python.get("condaDependenciesFile"):
            env.python.conda_dependencies = CondaDependencies(python["condaDependenciesFile"])
        env.python.user_managed_dependencies = bool(python.get("userManagedDependencies", False))
        env.python.interpreter_path = python.get("interpreterPath")
        docker = doc.get("docker") or {}
        env.docker.base_image = docker.get("baseImage")
        env.docker.base_dockerfile = docker.get("baseDockerfile")
        env.docker.shm_size = docker.get("shmSize") or "2g"
        env.docker.arguments = list(docker.get("arguments") or [])
        env.environment_variables = {str(k): str(v) for k, v in (doc.get("environmentVariables") or {}).items()}
        return env

    def to_v1_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "environmentVariables": dict(self.environment_variables),
            "python": {
                "userManagedDependencies": self.python.user_managed_dependencies,
                "interpreterPath": self.python.interpreter_path or "python",
                "condaDependenciesFile": self.python.conda_dependencies_file,
                "baseCondaEnvironment": self.python.base_conda_environment,
                "condaDependencies": self.python.conda_dependencies.as_dict(),
            },
            "docker": {
                "baseImage": self.docker.base_image,
                "baseDockerfile": self.docker.base_dockerfile,
                "enabled": self.docker.enabled,
                "shmSize": self.docker.shm_size,
                "arguments": list(self.docker.arguments),
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """A complete, JSON-serializable description (stored in revision records and saved environments).

        Index URLs lose inline passwords (``https://user:secret@host`` is stored as ``https://host``): give
        credentials by reference instead, ``https://user:${PIP_PASSWORD}@host/simple`` (expanded at build
        time), ``~/.netrc`` or keyring.
        """
        doc = self.to_v1_document()
        doc["pipOptions"] = asdict(self.pip_options)
        options = doc["pipOptions"]
        options["index_url"] = _stored_url(options["index_url"])
        options["extra_index_urls"] = [_stored_url(u) for u in options["extra_index_urls"]]
        doc["docker"]["gpuSupport"] = self.docker.gpu_support
        doc["docker"]["systemPackages"] = list(self.docker.system_packages)
        return doc

    @classmethod
    def from_stored_dict(cls, doc: dict[str, Any]) -> Environment:
        """Inverse of :meth:`to_dict`."""
        env = cls.from_v1_document(doc)
        env.pip_options = PipOptions(**(doc.get("pipOptions") or {}))
        env.docker.gpu_support = bool(doc.get("docker", {}).get("gpuSupport", False))
        env.docker.system_packages = list(doc.get("docker", {}).get("systemPackages", []))
        return env

    def digest(self) -> str:
        """sha256 of what determines the installed software (not the name)."""
        doc = self.to_dict()
        doc.pop("name", None)
        doc.pop("version", None)
        doc.pop("environmentVariables", None)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    # -- v1 methods ------------------------------------------------------------------------------
    def clone(self, new_name: str) -> Environment:
        env = Environment.from_stored_dict(self.to_dict())
        env.name = new_name
        return env

    def save_to_directory(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "azureml_environment.json"
        if target.exists() and not overwrite:
            raise InvalidInput(f"{target} exists; pass overwrite=True to replace it.")
        target.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load_from_directory(cls, path: str | os.PathLike[str]) -> Environment:
        target = Path(path) / "azureml_environment.json"
        if not target.is_file():
            raise InvalidInput(f"{target} not found; save an environment there with save_to_directory().")
        return cls.from_stored_dict(json.loads(target.read_text()))

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, pip={self.pip_packages!r}, base_image={self.docker.base_image!r})"


def _stored_url(url: str | None) -> str | None:
    """An index URL as it may be stored: without an inline password (a ``${VAR}`` reference is kept)."""
    if not url:
        return url
    from nbdeploy.specs.credentials import redact_index_url

    userinfo = url.partition("://")[2].rpartition("@")[0]
    if "${" in userinfo:
        return url
    stored, had_credentials = redact_index_url(url)
    if had_credentials:
        import logging

        logging.getLogger(__name__).warning(
            "the credentials in %s are not stored; give them by reference (${VAR} in the URL, ~/.netrc or keyring)",
            stored,
        )
    return stored


def _as_list(value: Any, key: str, source: str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidSpec(key, "must be a list", source=source)
    return [str(v) for v in value]


def _read_requirements(path: Path) -> list[str]:
    if not path.is_file():
        raise InvalidInput(f"Requirements file {path} does not exist.")
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _imported_top_level_modules(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.partition(".")[0])
    return found
