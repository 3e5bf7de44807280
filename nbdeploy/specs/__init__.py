"""What to deploy and how: environments, inference configs and per-target deployment configs.

Everything here is plain data with validation and (de)serialization to the Azure ML SDK v1 files
(``inferenceconfig.json``, ``deploymentconfig.json``, conda YAML). Nothing here runs or deploys.
"""

from nbdeploy.specs.conda import CondaDependencies
from nbdeploy.specs.deployment import (
    AciDeploymentConfig,
    AksDeploymentConfig,
    DeploymentConfig,
    LocalDeploymentConfig,
    ProcessDeploymentConfig,
    deployment_config_class,
    deployment_config_from_dict,
    load_deployment_config,
    register_deployment_config,
)
from nbdeploy.specs.environment import DockerSection, Environment, PipOptions, PythonSection
from nbdeploy.specs.inference import InferenceConfig, load_inference_config

__all__ = [
    "AciDeploymentConfig",
    "AksDeploymentConfig",
    "CondaDependencies",
    "DeploymentConfig",
    "DockerSection",
    "Environment",
    "InferenceConfig",
    "LocalDeploymentConfig",
    "PipOptions",
    "ProcessDeploymentConfig",
    "PythonSection",
    "deployment_config_class",
    "deployment_config_from_dict",
    "load_deployment_config",
    "load_inference_config",
    "register_deployment_config",
]
