"""nbdeploy: register models and deploy them as scoring services from notebooks, shells and CI.

Public names are imported lazily (PEP 562), so ``import nbdeploy`` and ``%load_ext nbdeploy`` stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Workspace": "nbdeploy.workspace",
    "Model": "nbdeploy.registry",
    "Environment": "nbdeploy.specs",
    "CondaDependencies": "nbdeploy.specs",
    "InferenceConfig": "nbdeploy.specs",
    "DeploymentConfig": "nbdeploy.specs",
    "deploy": "nbdeploy.service",
    "Webservice": "nbdeploy.service",
    "NbdeployError": "nbdeploy.errors",
    "errors": "nbdeploy.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None and name.endswith("DeploymentConfig"):
        module_name = "nbdeploy.specs"  # each target's config class, e.g. ProcessDeploymentConfig
    if module_name is None:
        raise AttributeError(f"module 'nbdeploy' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbdeploy``: register the magics (no network, no heavy imports)."""
    from nbdeploy.notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbdeploy``: remove the magics' progress hook."""
    from nbdeploy.notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)


if TYPE_CHECKING:  # pragma: no cover
    from nbdeploy import errors as errors
    from nbdeploy.errors import NbdeployError as NbdeployError
    from nbdeploy.registry import Model as Model
    from nbdeploy.service import Webservice as Webservice
    from nbdeploy.service import deploy as deploy
    from nbdeploy.specs import CondaDependencies as CondaDependencies
    from nbdeploy.specs import DeploymentConfig as DeploymentConfig
    from nbdeploy.specs import Environment as Environment
    from nbdeploy.specs import InferenceConfig as InferenceConfig
    from nbdeploy.targets.kubernetes.config import AksDeploymentConfig as AksDeploymentConfig
    from nbdeploy.targets.local_docker import LocalDeploymentConfig as LocalDeploymentConfig
    from nbdeploy.targets.process import ProcessDeploymentConfig as ProcessDeploymentConfig
    from nbdeploy.workspace import Workspace as Workspace
