"""Azure ML SDK v1 spelling: change ``azureml.`` to ``nbdeploy.compat.azureml.`` in a notebook's imports.

``from nbdeploy.compat.azureml.core import Workspace, Model, Environment`` and friends mirror v1's modules.
"""

from nbdeploy.compat.azureml._v1 import (
    AciWebservice,
    AksWebservice,
    CondaDependencies,
    Environment,
    InferenceConfig,
    LocalWebservice,
    Model,
    Webservice,
    Workspace,
)

__all__ = [
    "AciWebservice", "AksWebservice", "CondaDependencies", "Environment", "InferenceConfig", "LocalWebservice",
    "Model", "Webservice", "Workspace",
]
