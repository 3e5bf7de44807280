"""What to deploy and how: environments, inference configs and deployment configs.

Everything here is plain data with validation and (de)serialization to the Azure ML SDK v1 files
(``inferenceconfig.json``, ``deploymentconfig.json``, conda YAML). Nothing here runs or deploys. Each target's
own config class lives with the target (``nbdeploy/targets/``); ``from nbdeploy.specs import
ProcessDeploymentConfig`` and the like still work: such names are looked up in the target registry.
"""

from typing import Any

from nbdeploy.specs.conda import CondaDependencies
from nbdeploy.specs.deployment import (
    DeploymentConfig,
    deployment_config_class,
    deployment_config_from_dict,
    load_deployment_config,
)
from nbdeploy.specs.environment import DockerSection, Environment, PipOptions, PythonSection
from nbdeploy.specs.inference import InferenceConfig, load_inference_config

__all__ = [
    "CondaDependencies",
    "DeploymentConfig",
    "DockerSection",
    "Environment",
    "InferenceConfig",
    "PipOptions",
    "PythonSection",
    "deployment_config_class",
    "deployment_config_from_dict",
    "load_deployment_config",
    "load_inference_config",
]


def __getattr__(name: str) -> Any:
    """``<Target>DeploymentConfig`` classes, found among the registered targets' config classes."""
    if name.endswith("DeploymentConfig"):
        from nbdeploy.targets.registry import target_classes

        for cls in target_classes():
            if cls.config_class.__name__ == name:
                return cls.config_class
    raise AttributeError(f"module 'nbdeploy.specs' has no attribute {name!r}")
