"""Mirror of ``azureml.core.workspace``."""

from nbdeploy.compat.azureml._workspace import Workspace

__all__ = ["Workspace"]
