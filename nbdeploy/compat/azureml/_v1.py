"""The Azure ML SDK v1 spelling on top of nbdeploy's own API.

A v1 deploy notebook runs with its ``azureml`` imports changed to ``nbdeploy.compat.azureml`` (the module
tree mirrors v1's: ``nbdeploy.compat.azureml.core.model``, ``.core.webservice``, ``.core.environment`` ...).
Differences from v1 are listed in docs/compat-azureml.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nbdeploy import __version__ as _nbdeploy_version
from nbdeploy import service as _service
from nbdeploy.compat.azureml._workspace import Workspace
from nbdeploy.compat.azureml.exceptions import WebserviceException, raises_v1
from nbdeploy.errors import InvalidInput, NbdeployError, TargetNotAvailable
from nbdeploy.registry import Model as _Model
from nbdeploy.service import Webservice as _Webservice
from nbdeploy.specs import CondaDependencies, DeploymentConfig, InferenceConfig, deployment_config_class
from nbdeploy.specs import Environment as _Environment
from nbdeploy.specs.environment_store import load_environment, save_environment
from nbdeploy.targets.kubernetes.config import AksDeploymentConfig
from nbdeploy.targets.local_docker import LocalDeploymentConfig
from nbdeploy.targets.process import ProcessDeploymentConfig
from nbdeploy.workspace import Workspace as _Workspace
from nbdeploy.workspace import as_workspace

#: The v1 API level this layer mirrors (azureml-core 1.61), with nbdeploy's version as the local part.
VERSION = f"1.61.0+nbdeploy.{_nbdeploy_version}"

log = logging.getLogger(__name__)

__all__ = [
    "AciWebservice",
    "AksWebservice",
    "CondaDependencies",
    "Environment",
    "InferenceConfig",
    "LocalWebservice",
    "Model",
    "Webservice",
    "Workspace",
]


class Environment(_Environment):
    """v1's ``Environment`` (``env.python.conda_dependencies``, ``env.docker.base_image``, ``register``)."""

    @classmethod
    def get(
        cls, workspace: _Workspace | None, name: str, version: str | None = None, label: str | None = None
    ) -> _Environment:
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

    @raises_v1(WebserviceException)
    def __init__(
        self,
        workspace: _Workspace | None,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - v1 names it id
        tags: Any = None,
        properties: Any = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
    ) -> None:
        if id:
            name, _, v = id.partition(":")
            version = int(v) if v else version
        if not name:
            raise InvalidInput("Model(workspace, name=...) needs a name or an id 'name:version'")
        super().__init__(name, version, workspace=workspace)

    @staticmethod
    @raises_v1(WebserviceException)
    def register(  # type: ignore[override]
        workspace: _Workspace | None,
        model_path: str,
        model_name: str,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        datasets: Any = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> _Model:
        log.info("Registering model %s", model_name)
        return _Model.register(
            model_path,
            model_name,
            tags=tags,
            properties=properties,
            description=description,
            model_framework=model_framework,
            model_framework_version=model_framework_version,
            workspace=workspace,
        )

    @staticmethod
    def list(  # type: ignore[override]
        workspace: _Workspace | None,
        name: str | None = None,
        tags: Any = None,
        properties: Any = None,
        run_id: str | None = None,
        latest: bool = False,
        **kwargs: Any,
    ) -> list[_Model]:
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
    @raises_v1(WebserviceException)
    def deploy(
        workspace: _Workspace | None,
        name: str,
        models: Sequence[_Model],
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Webservice:
        """Start ``name`` and return its Webservice; call ``wait_for_deployment`` to wait, as in v1.

        ``deployment_target`` (an attached ``AksCompute``) chooses the cluster: its kubeconfig context goes into
        the AKS deployment config.
        """
        if inference_config is None:
            raise InvalidInput(
                "No-code deployment (no inference_config) is not supported; pass InferenceConfig(entry_script=...)."
            )
        ws = as_workspace(workspace)
        config = resolve_deployment_config(ws, deployment_config, deployment_target)
        svc = _service.deploy(
            name,
            list(models),
            deployable_inference_config(inference_config),
            config,
            overwrite=overwrite,
            workspace=ws,
            show_output=show_output,
        )
        return Webservice._wrap(svc)

    @staticmethod
    def package(
        workspace: _Workspace | None,
        models: Sequence[_Model],
        inference_config: InferenceConfig | None = None,
        generate_dockerfile: bool = False,
        image_name: str | None = None,
        image_label: str | None = None,
    ) -> Any:
        """Build the scoring image now (needs a Docker engine) and return a ModelPackage; ``.location`` is its tag."""
        from nbdeploy.compat.azureml._package import package

        return package(workspace, models, inference_config, generate_dockerfile, image_name, image_label)

    @staticmethod
    @raises_v1(WebserviceException)
    def profile(
        workspace: _Workspace | None,
        profile_name: str,
        models: Sequence[_Model],
        inference_config: InferenceConfig,
        input_dataset: Any = None,
        cpu: float | None = None,
        memory_in_gb: float | None = None,
        description: str | None = None,
        num_requests: int | None = None,
    ) -> Any:
        """Run the scoring server on the samples (process target) and measure latency, memory and CPU: a ModelProfile."""
        from nbdeploy.compat.azureml._profile import profile

        return profile(
            workspace,
            profile_name,
            models,
            deployable_inference_config(inference_config),
            input_dataset,
            cpu,
            memory_in_gb,
            description,
            num_requests,
        )


#: v1's server stack, which nbdeploy's scoring server replaces: not installed into environments.
V1_SERVER_PACKAGES = ("azureml-defaults", "azureml-inference-server-http")
_said: set[str] = set()


def _say_once(key: str, message: str, *args: Any) -> None:
    if key not in _said:
        _said.add(key)
        log.warning(message, *args)


def deployable_inference_config(config: InferenceConfig) -> InferenceConfig:
    """``config`` without v1's server packages in its environment (nbdeploy's server replaces them)."""
    env = getattr(config, "environment", None)
    if env is None:
        return config
    from nbdeploy.specs.conda import _requirement_name

    dropped = [p for p in env.pip_packages if _requirement_name(p) in V1_SERVER_PACKAGES]
    if not dropped:
        return config
    clone = env.clone(env.name)
    for package in dropped:
        clone.python.conda_dependencies.remove_pip_package(package)
    _say_once(
        "server-packages",
        "Environment %r: %s not installed: nbdeploy's scoring server replaces v1's server stack",
        env.name,
        ", ".join(dropped),
    )
    copy = _copy_inference_config(config)
    copy.environment = clone
    return copy


def _copy_inference_config(config: InferenceConfig) -> InferenceConfig:
    import copy

    return copy.copy(config)


def resolve_deployment_config(
    workspace: _Workspace, config: DeploymentConfig | None, deployment_target: Any = None
) -> DeploymentConfig:
    """The nbdeploy config for a v1 deploy: LocalWebservice -> local or process; an AKS target -> its context."""
    from nbdeploy.compat.azureml._compute import AksCompute, compute_target_named

    if deployment_target is not None:
        if not isinstance(deployment_target, AksCompute):
            raise InvalidInput(
                f"deployment_target: expected an attached AksCompute, got {type(deployment_target).__name__}"
            )
        if config is None:
            config = AksDeploymentConfig()
        if not isinstance(config, AksDeploymentConfig):
            raise InvalidInput(
                f"deployment_target {deployment_target.name!r} is an AKS cluster but deployment_config is for "
                f"{config.target!r}; use AksWebservice.deploy_configuration(...)"
            )
        settings = deployment_target.deployment_settings()
        if config.namespace:
            settings.pop("namespace")
        return config.merged(**settings)
    if (
        isinstance(config, AksDeploymentConfig)
        and config.compute_target_name
        and not config.kubeconfig
        and not config.context
    ):
        target = compute_target_named(workspace, config.compute_target_name)
        settings = target.deployment_settings()
        if config.namespace:
            settings.pop("namespace")
        return config.merged(**settings)
    if isinstance(config, LocalDeploymentConfig) and _local_target() == "process":
        return ProcessDeploymentConfig(
            port=config.port,
            tags=config.tags,
            properties=config.properties,
            description=config.description,
            auth_enabled=config.auth_enabled,
        )
    return config or ProcessDeploymentConfig()


def _require_target(target: str, v1_name: str) -> None:
    """TargetNotAvailable saying the v1 deployment kind is not available yet, when its target is not installed."""
    from nbdeploy.targets.registry import get_target_class

    try:
        get_target_class(target)
    except TargetNotAvailable as exc:
        raise TargetNotAvailable(
            f"{v1_name} deployments are not available yet: {exc}. Deploy with LocalWebservice "
            "(a local container, or the process target) or AksWebservice meanwhile."
        ) from exc


def _local_target() -> str:
    """``local`` when a Docker engine answers here (or NBDEPLOY_V1_LOCAL_TARGET says so), else ``process`` (said once)."""
    choice = os.environ.get("NBDEPLOY_V1_LOCAL_TARGET")
    if choice in ("process", "local"):
        return choice
    try:
        from nbdeploy.builders.docker_builder import docker_client

        docker_client(timeout=5).close()
    except NbdeployError as exc:
        _say_once(
            "local-process",
            "LocalWebservice runs on the process target (no container) because no Docker engine "
            "answers (%s). Set NBDEPLOY_V1_LOCAL_TARGET=local or process to choose.",
            str(getattr(exc, "reason", exc)).rstrip("."),
        )
        return "process"
    return "local"


class Webservice(_Webservice):
    """v1's ``Webservice(workspace, name)``: the subclass matching where it runs (LocalWebservice, AksWebservice, ...)."""

    _compute_types: tuple[str, ...] = ()

    def __new__(cls, workspace: _Workspace | None = None, name: str | None = None) -> Webservice:
        if cls is Webservice and name is not None:
            try:
                target = _Webservice(name, workspace).target
            except NbdeployError:
                target = ""  # __init__ raises the v1-typed error
            cls = next(
                (
                    sub
                    for sub in (LocalWebservice, AciWebservice, AksWebservice)
                    if target.lower() in sub._compute_types
                ),
                Webservice,
            )
        return super().__new__(cls)

    @raises_v1(WebserviceException)
    def __init__(self, workspace: _Workspace | None, name: str) -> None:
        super().__init__(name, workspace)

    @classmethod
    def _wrap(cls, svc: _Webservice) -> Webservice:
        return Webservice(svc.workspace, svc.name)

    @classmethod
    def list(  # type: ignore[override]
        cls,
        workspace: _Workspace | None,
        compute_type: str | None = None,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: Any = None,
        properties: Any = None,
        image_digest: str | None = None,
    ) -> list[_Webservice]:
        """Services in the workspace; ``compute_type`` ACI, AKS or Local (Local: the local and process targets)."""
        kind = (compute_type or "").upper()
        targets = {"ACI": ("aci",), "AKS": ("aks",), "LOCAL": ("local", "process")}.get(
            kind, (compute_type,) if compute_type else None
        )
        if cls is not Webservice and cls._compute_types and targets is None:
            targets = cls._compute_types
        services = [
            s for s in _Webservice.list(workspace, model_name=model_name) if targets is None or s.target in targets
        ]
        return [Webservice._wrap(s) for s in services if not model_id or model_id in s.models]

    @raises_v1(WebserviceException)
    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None, sink: Any = None) -> Any:
        return super().wait_for_deployment(show_output=show_output, timeout_sec=timeout_sec, sink=sink)

    @raises_v1(WebserviceException)
    def run(self, input_data: Any, timeout: float = 60.0) -> Any:
        return super().run(input_data, timeout=timeout)

    def get_logs(self, num_lines: int = 5000, init: bool = False, raw: bool = False) -> str:  # type: ignore[override]
        """The serving revision's log tail (``init`` and ``raw`` are v1 flags; the server log holds both)."""
        return super().get_logs(num_lines)

    @raises_v1(WebserviceException)
    def update(  # type: ignore[override]
        self,
        models: Iterable[Any] | None = None,
        image_config: Any = None,
        deployment_config: DeploymentConfig | None = None,
        wait: bool = True,
        inference_config: InferenceConfig | None = None,
        show_output: bool = False,
        **kwargs: Any,
    ) -> Webservice:
        """v1's ``update``: a new revision beside the serving one, switched only when Healthy."""
        given = {k: v for k, v in kwargs.items() if v is not None}
        current = self.deployment_config if given else None
        settable = {f.name for f in dataclasses.fields(current)} if current is not None else set()
        changes = {k: v for k, v in given.items() if k in settable}  # e.g. AksWebservice.update(num_replicas=3)
        ignored = sorted(set(given) - set(changes))
        if ignored:
            warnings.warn(f"Webservice.update ignores {', '.join(ignored)} (not supported by nbdeploy)", stacklevel=3)
        if deployment_config is not None:
            deployment_config = resolve_deployment_config(self.workspace, deployment_config)
        if changes and current is not None:  # changes are only found when there is a current config
            deployment_config = (deployment_config or current).merged(**changes)
        if inference_config is not None:
            inference_config = deployable_inference_config(inference_config)
        _Webservice.update(
            self,
            models=models,
            inference_config=inference_config,
            deployment_config=deployment_config,
            show_output=show_output,
        )
        return self

    @raises_v1(WebserviceException)
    def reload(self, wait: bool = False, show_output: bool = False) -> Webservice:  # type: ignore[override]
        """Restart on the re-read entry script and source folder (no rebuild), without downtime."""
        _Webservice.update(self, show_output=show_output)
        return self

    @raises_v1(WebserviceException)
    def delete(self, delete_cache: bool = True, delete_image: bool = False, delete_volume: bool = True) -> None:  # type: ignore[override]
        super().delete(delete_image=delete_image)

    def get_token(self) -> tuple[str, float]:
        raise NotImplementedError(
            f"{type(self).__name__} does not support token auth (v1: AKS only); nbdeploy uses keys"
        )

    @staticmethod
    @raises_v1(WebserviceException)
    def deploy_from_image(
        workspace: _Workspace | None,
        name: str,
        image: Any,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Deploy an ``Image`` (pre-1.0 API): its models, script and environment."""
        from nbdeploy.compat.azureml._package import Image

        if not isinstance(image, Image):
            raise InvalidInput(f"deploy_from_image: expected an Image from Image.create, got {type(image).__name__}")
        return Model.deploy(
            workspace, name, image.models, image.inference_config(), deployment_config, deployment_target, overwrite
        )

    @staticmethod
    @raises_v1(WebserviceException)
    def deploy_from_model(
        workspace: _Workspace | None,
        name: str,
        models: Sequence[_Model],
        image_config: Any,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Pre-1.0: deploy models with a ``ContainerImage.image_configuration``."""
        return Model.deploy(
            workspace,
            name,
            models,
            image_config.inference_config(as_workspace(workspace)),
            deployment_config,
            deployment_target,
            overwrite,
        )


class LocalWebservice(Webservice):
    """v1's ``LocalWebservice``: a container on the local Docker engine, or the process target when none answers."""

    _compute_types = ("local", "process")

    @staticmethod
    def deploy_configuration(port: int | None = None) -> DeploymentConfig:
        return LocalDeploymentConfig(port=port)


class AciWebservice(Webservice):
    """v1's ``AciWebservice``: a container on a Docker engine reached by URL (the aci target)."""

    _compute_types = ("aci",)

    @staticmethod
    def deploy_configuration(
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        location: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        enable_app_insights: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        dns_name_label: str | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        collect_model_data: bool | None = None,
        cmk_vault_base_url: str | None = None,
        cmk_key_name: str | None = None,
        cmk_key_version: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
    ) -> DeploymentConfig:
        """v1's parameters mapped to the aci target's config; the ones nbdeploy cannot honour are refused by name."""
        unsupported = {
            "cmk_vault_base_url": cmk_vault_base_url,
            "cmk_key_name": cmk_key_name,
            "cmk_key_version": cmk_key_version,
            "vnet_name": vnet_name,
            "subnet_name": subnet_name,
        }
        for key, value in unsupported.items():
            if value is not None:
                raise WebserviceException(
                    f"AciWebservice.deploy_configuration: {key} is not supported by nbdeploy "
                    "(the container runs on your Docker engine: encrypt and network it there)"
                )
        values: dict[str, Any] = {
            "cpu_cores": cpu_cores,
            "memory_gb": memory_gb,
            "tags": tags,
            "properties": properties,
            "description": description,
            "location": location,
            "auth_enabled": auth_enabled,
            "ssl_enabled": ssl_enabled,
            "dns_name_label": dns_name_label,
            "primary_key": primary_key,
            "secondary_key": secondary_key,
            "ssl_cert_pem_file": ssl_cert_pem_file,
            "ssl_key_pem_file": ssl_key_pem_file,
            "ssl_cname": ssl_cname,
            "collect_model_data": collect_model_data,
            "enable_app_insights": enable_app_insights,
        }
        _require_target("aci", "AciWebservice")
        return deployment_config_class("aci")(**{k: v for k, v in values.items() if v is not None})


class AksWebservice(Webservice):
    """v1's ``AksWebservice``: a Kubernetes Deployment."""

    _compute_types = ("aks",)

    @staticmethod
    def deploy_configuration(
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        compute_target_name: str | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        blobfuse_enabled: bool | None = None,
    ) -> AksDeploymentConfig:
        values = dict(locals())
        for unsupported in ("collect_model_data", "enable_app_insights", "blobfuse_enabled"):
            values.pop(unsupported)
        return AksDeploymentConfig(**{k: v for k, v in values.items() if v is not None})

    def get_token(self) -> tuple[str, float]:
        raise NotImplementedError(
            "AksWebservice.get_token: token auth is not supported by nbdeploy; use key auth (get_keys())"
        )
