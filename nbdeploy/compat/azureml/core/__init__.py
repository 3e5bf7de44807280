"""Mirror of ``azureml.core``."""

from nbdeploy.compat.azureml._v1 import Environment, Model, Webservice, Workspace

__all__ = ["Environment", "Model", "Webservice", "Workspace"]
