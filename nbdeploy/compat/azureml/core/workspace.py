"""Mirror of ``azureml.core.workspace``."""

from nbdeploy.compat.azureml._v1 import Workspace

__all__ = ["Workspace"]
