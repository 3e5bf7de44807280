"""Mirror of ``azureml.core.compute_target`` (where v1 samples import ``ComputeTargetException`` from)."""

from nbdeploy.compat.azureml._compute import ComputeTarget
from nbdeploy.compat.azureml.exceptions import ComputeTargetException

__all__ = ["ComputeTarget", "ComputeTargetException"]
