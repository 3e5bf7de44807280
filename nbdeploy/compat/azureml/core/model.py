"""Mirror of ``azureml.core.model``."""

from nbdeploy.compat.azureml._v1 import InferenceConfig, Model
from nbdeploy.compat.azureml.exceptions import ModelNotFoundException

__all__ = ["InferenceConfig", "Model", "ModelNotFoundException"]
