"""Mirror of ``azureml.core.compute.aks``."""

from nbdeploy.compat.azureml._compute import AksAttachConfiguration, AksCompute

__all__ = ["AksAttachConfiguration", "AksCompute"]
