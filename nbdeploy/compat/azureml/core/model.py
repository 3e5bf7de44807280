"""Mirror of ``azureml.core.model``."""

from nbdeploy.compat.azureml._v1 import InferenceConfig, Model

__all__ = ["InferenceConfig", "Model"]
