"""The Azure ML SDK v1 spelling on top of nbdeploy's own API.

A v1 deploy notebook runs with its ``azureml`` imports changed to ``nbdeploy.compat.azureml`` (the module
tree mirrors v1's: ``nbdeploy.compat.azureml.core.model``, ``.core.webservice``, ``.core.environment`` ...).
Differences from v1 are listed in docs/compat-azureml.md.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nbdeploy import service as _service
from nbdeploy.errors import InvalidInput, NbdeployError
from nbdeploy.registry import Model as _Model
from nbdeploy.service import Webservice as _Webservice
from nbdeploy.specs import CondaDependencies, DeploymentConfig, InferenceConfig, deployment_config_class
from nbdeploy.targets.kubernetes.config import AksDeploymentConfig
from nbdeploy.targets.local_docker import LocalDeploymentConfig
from nbdeploy.targets.process import ProcessDeploymentConfig
from nbdeploy.specs import Environment as _Environment
from nbdeploy.specs.environment_store import load_environment, save_environment
from nbdeploy.workspace import Workspace as _Workspace
from nbdeploy.workspace import as_workspace

log = logging.getLogger(__name__)

__all__ = [
    "AciWebservice", "AksWebservice", "CondaDependencies", "Environment", "InferenceConfig", "LocalWebservice",
    "Model", "Webservice", "Workspace",
]


class Workspace(_Workspace):
    """v1's ``Workspace``: ``Workspace.from_config()`` finds the workspace; ``get``/``create`` take a name or path."""

    @classmethod
    def get(cls, name: str | None = None, *args: Any, **kwargs: Any) -> _Workspace:
        """The workspace at path ``name`` (v1 subscription/resource-group arguments are ignored)."""
        return as_workspace(name)

    @property
    def name(self) -> str:
        return self.path.name


class Environment(_Environment):
    """v1's ``Environment`` (``env.python.conda_dependencies``, ``env.docker.base_image``, ``register``)."""

    @classmethod
    def get(cls, workspace: _Workspace | None, name: str, version: str | None = None, label: str | None = None) -> _Environment:
        """A registered environment; curated ``AzureML-*`` names give an empty one (the server needs no SDK)."""
        if name.startswith("AzureML-"):
            env = _Environment(name)
            env.python.user_managed_dependencies = True
            return env
        return load_environment(as_workspace(workspace), name)

    def register(self, workspace: _Workspace | None) -> _Environment:
        save_environment(as_workspace(workspace), self)
        return self


class Model(_Model):
    """v1's ``Model``: ``Model(ws, name)``, ``Model.register(ws, model_path, model_name)``, ``Model.deploy(ws, ...)``."""

    def __init__(self, workspace: _Workspace | None, name: str | None = None, id: str | None = None, tags: Any = None,
                 properties: Any = None, version: int | None = None, run_id: str | None = None,
                 model_framework: str | None = None, expand: bool = True) -> None:
        if id:
            name, _, v = id.partition(":")
            version = int(v) if v else version
        if not name:
            raise InvalidInput("Model(workspace, name=...) needs a name or an id 'name:version'")
        super().__init__(name, version, workspace=workspace)

    @staticmethod
    def register(workspace: _Workspace | None, model_path: str, model_name: str, tags: dict[str, str] | None = None,  # type: ignore[override]
                 properties: dict[str, str] | None = None, description: str | None = None, datasets: Any = None,
                 model_framework: str | None = None, model_framework_version: str | None = None, child_paths: Any = None,
                 sample_input_dataset: Any = None, sample_output_dataset: Any = None, resource_configuration: Any = None) -> _Model:
        log.info("Registering model %s", model_name)
        return _Model.register(model_path, model_name, tags=tags, properties=properties, description=description,
                               model_framework=model_framework, model_framework_version=model_framework_version, workspace=workspace)

    @staticmethod
    def list(workspace: _Workspace | None, name: str | None = None, tags: Any = None, properties: Any = None,  # type: ignore[override]
             run_id: str | None = None, latest: bool = False, **kwargs: Any) -> list[_Model]:
        return _Model.list(name=name, tags=tags, properties=properties, latest=latest, workspace=workspace)

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: _Workspace | None = None) -> str:
        """Where a model's file or folder is: inside a deployment (``azureml-models/``) or, outside, the registry copy."""
        root = Path(os.environ.get("AML_APP_ROOT", ".")) / "azureml-models" / model_name
        if root.is_dir():
            versions = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
            chosen = version if version is not None else (versions[0] if versions else None)
            folder = root / str(chosen)
            entries = list(folder.iterdir()) if folder.is_dir() else []
            if len(entries) == 1:
                return str(entries[0])
        if Path(model_name).exists():
            return model_name
        model = _Model.get(model_name, version, workspace=_workspace)
        target = as_workspace(_workspace).cache_dir / "model-paths" / model_name / str(model.version)
        return model.download(str(target), exist_ok=True)

    @staticmethod
    def deploy(workspace: _Workspace | None, name: str, models: Sequence[_Model], inference_config: InferenceConfig | None = None,  # type: ignore[override]
               deployment_config: DeploymentConfig | None = None, deployment_target: Any = None, overwrite: bool = False,
               show_output: bool = False) -> _Webservice:
        """Start ``name`` and return its Webservice; call ``wait_for_deployment`` to wait, as in v1."""
        if inference_config is None:
            raise InvalidInput("No-code deployment (no inference_config) is not supported; pass InferenceConfig(entry_script=...).")
        svc = _service.deploy(name, list(models), inference_config, _resolve_config(deployment_config), overwrite=overwrite, workspace=workspace)
        return Webservice._wrap(svc)


def _resolve_config(config: DeploymentConfig | None) -> DeploymentConfig:
    """LocalWebservice configs go to the local Docker target when it can run here, else to the process target."""
    if isinstance(config, LocalDeploymentConfig) and _local_target() == "process":
        return ProcessDeploymentConfig(port=config.port, tags=config.tags, properties=config.properties,
                                       description=config.description, auth_enabled=config.auth_enabled)
    return config or ProcessDeploymentConfig()


def _local_target() -> str:
    """``local`` when a Docker engine answers here (or NBDEPLOY_V1_LOCAL_TARGET says so), else ``process``."""
    choice = os.environ.get("NBDEPLOY_V1_LOCAL_TARGET")
    if choice in ("process", "local"):
        return choice
    try:
        from nbdeploy.builders.docker_builder import docker_client

        docker_client(timeout=5).close()
    except NbdeployError as exc:
        log.warning("LocalWebservice runs on the process target: %s", exc)
        return "process"
    return "local"


class Webservice(_Webservice):
    """v1's ``Webservice(workspace, name)``."""

    def __init__(self, workspace: _Workspace | None, name: str) -> None:  # type: ignore[override]
        super().__init__(name, workspace)

    @classmethod
    def _wrap(cls, svc: _Webservice) -> Webservice:
        return cls(svc.workspace, svc.name)

    @classmethod
    def list(cls, workspace: _Workspace | None, compute_type: str | None = None, image_name: str | None = None,  # type: ignore[override]
             image_id: str | None = None, model_name: str | None = None, model_id: str | None = None,
             tags: Any = None, properties: Any = None, image_digest: str | None = None) -> list[_Webservice]:
        target = {"ACI": "aci", "AKS": "aks", "LOCAL": None}.get((compute_type or "").upper(), compute_type)
        services = _Webservice.list(workspace, target=target, model_name=model_name)
        return [cls._wrap(s) for s in services if not model_id or model_id in s.models]

    def update(self, models: Iterable[Any] | None = None, image_config: Any = None, deployment_config: DeploymentConfig | None = None,  # type: ignore[override]
               wait: bool = True, inference_config: InferenceConfig | None = None, **kwargs: Any) -> Webservice:
        ignored = sorted(k for k, v in kwargs.items() if v is not None)
        if ignored:
            warnings.warn(f"Webservice.update ignores {', '.join(ignored)} (not supported by nbdeploy)", stacklevel=2)
        if deployment_config is not None:
            deployment_config = _resolve_config(deployment_config)
        super().update(models=models, inference_config=inference_config, deployment_config=deployment_config)
        return self

    def reload(self, wait: bool = False) -> Webservice:  # type: ignore[override]
        super().reload()
        return self


class LocalWebservice(Webservice):
    """v1's ``LocalWebservice``."""

    @staticmethod
    def deploy_configuration(port: int | None = None) -> DeploymentConfig:
        return LocalDeploymentConfig(port=port)

    def delete(self, delete_cache: bool = True, delete_image: bool = False, delete_volume: bool = True) -> None:  # type: ignore[override]
        super().delete(delete_image=delete_image)


class AciWebservice(Webservice):
    """v1's ``AciWebservice``: a container on a Docker engine reached by URL."""

    @staticmethod
    def deploy_configuration(cpu_cores: float | None = None, memory_gb: float | None = None, tags: dict[str, str] | None = None,
                             properties: dict[str, str] | None = None, description: str | None = None, location: str | None = None,
                             auth_enabled: bool | None = None, ssl_enabled: bool | None = None, enable_app_insights: bool | None = None,
                             ssl_cert_pem_file: str | None = None, ssl_key_pem_file: str | None = None, ssl_cname: str | None = None,
                             dns_name_label: str | None = None, primary_key: str | None = None, secondary_key: str | None = None,
                             collect_model_data: bool | None = None, cmk_vault_base_url: str | None = None, cmk_key_name: str | None = None,
                             cmk_key_version: str | None = None, vnet_name: str | None = None, subnet_name: str | None = None) -> DeploymentConfig:
        values = {"cpu_cores": cpu_cores, "memory_gb": memory_gb, "tags": tags, "properties": properties, "description": description,
                  "location": location, "auth_enabled": auth_enabled, "ssl_enabled": ssl_enabled, "dns_name_label": dns_name_label,
                  "primary_key": primary_key, "secondary_key": secondary_key}
        return deployment_config_class("aci")(**{k: v for k, v in values.items() if v is not None})


class AksWebservice(Webservice):
    """v1's ``AksWebservice``: a Kubernetes Deployment."""

    @staticmethod
    def deploy_configuration(autoscale_enabled: bool | None = None, autoscale_min_replicas: int | None = None,
                             autoscale_max_replicas: int | None = None, autoscale_refresh_seconds: int | None = None,
                             autoscale_target_utilization: int | None = None, collect_model_data: bool | None = None,
                             auth_enabled: bool | None = None, cpu_cores: float | None = None, memory_gb: float | None = None,
                             enable_app_insights: bool | None = None, scoring_timeout_ms: int | None = None,
                             replica_max_concurrent_requests: int | None = None, max_request_wait_time: int | None = None,
                             num_replicas: int | None = None, primary_key: str | None = None, secondary_key: str | None = None,
                             tags: dict[str, str] | None = None, properties: dict[str, str] | None = None, description: str | None = None,
                             gpu_cores: int | None = None, period_seconds: int | None = None, initial_delay_seconds: int | None = None,
                             timeout_seconds: int | None = None, success_threshold: int | None = None, failure_threshold: int | None = None,
                             namespace: str | None = None, token_auth_enabled: bool | None = None, compute_target_name: str | None = None,
                             cpu_cores_limit: float | None = None, memory_gb_limit: float | None = None,
                             blobfuse_enabled: bool | None = None) -> AksDeploymentConfig:
        values = dict(locals())
        for unsupported in ("collect_model_data", "enable_app_insights", "blobfuse_enabled"):
            values.pop(unsupported)
        return AksDeploymentConfig(**{k: v for k, v in values.items() if v is not None})


