"""Mirror of ``azureml.core.compute``: ``ComputeTarget``, ``AksCompute`` (attaches clusters), refusals for the rest."""

from nbdeploy.compat.azureml._compute import AksCompute, AmlCompute, ComputeInstance, ComputeTarget

__all__ = ["AksCompute", "AmlCompute", "ComputeInstance", "ComputeTarget"]
