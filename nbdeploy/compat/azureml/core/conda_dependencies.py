"""Mirror of ``azureml.core.conda_dependencies``."""

from nbdeploy.compat.azureml._v1 import CondaDependencies

__all__ = ["CondaDependencies"]
