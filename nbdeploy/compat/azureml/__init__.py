"""Azure ML SDK v1 spelling on nbdeploy.

Two routes: add ``import nbdeploy.compat.v1`` (or ``%load_ext nbdeploy.v1``) as a notebook's first line and keep
its ``azureml`` imports; or change ``azureml.`` to ``nbdeploy.compat.azureml.`` in its imports. The module tree
mirrors v1's (``.core``, ``.core.model``, ``.core.webservice``, ``.core.compute``, ``.core.image``, ``.exceptions``, ...).
"""

from nbdeploy.compat.azureml._compute import AksCompute, ComputeTarget
from nbdeploy.compat.azureml._package import ContainerImage, Image
from nbdeploy.compat.azureml._v1 import (
    VERSION,
    AciWebservice,
    AksWebservice,
    CondaDependencies,
    Environment,
    InferenceConfig,
    LocalWebservice,
    Model,
    Webservice,
)
from nbdeploy.compat.azureml._workspace import Workspace
from nbdeploy.compat.azureml import core  # so ``azureml.core.VERSION`` works after ``from nbdeploy.compat import azureml``

__all__ = [
    "VERSION", "core", "AciWebservice", "AksCompute", "AksWebservice", "ComputeTarget", "CondaDependencies", "ContainerImage",
    "Environment", "Image", "InferenceConfig", "LocalWebservice", "Model", "Webservice", "Workspace",
]
