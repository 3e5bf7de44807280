"""Mirror of ``azureml.core.environment``."""

from nbdeploy.compat.azureml._v1 import Environment

__all__ = ["Environment"]
