"""Mirror of ``azureml.core``.

``VERSION``, ``Workspace``, ``Model``, ``Environment``, ``Webservice``, ``ComputeTarget``, ``Image``.

Training names (``Experiment``, ``Run``, ``ScriptRunConfig``, ``Dataset``, ...) are not part of nbdeploy; importing
them raises :class:`~nbdeploy.compat.azureml.exceptions.NotSupportedInNbdeploy` saying so.
"""

from typing import Any

from nbdeploy.compat.azureml._compute import ComputeTarget
from nbdeploy.compat.azureml._package import Image
from nbdeploy.compat.azureml._v1 import VERSION, Environment, Model, Webservice
from nbdeploy.compat.azureml._workspace import Workspace
from nbdeploy.compat.azureml.exceptions import NotSupportedInNbdeploy

__version__ = VERSION

_TRAINING = {
    "Experiment",
    "Run",
    "ScriptRun",
    "ScriptRunConfig",
    "RunConfiguration",
    "Dataset",
    "Datastore",
    "Keyvault",
    "ComputeInstance",
    "LinkedService",
    "PipelineRun",
}


class _NotInNbdeploy(NotSupportedInNbdeploy, ImportError):
    """Raised for v1 names nbdeploy does not provide; an ImportError too, so ``from azureml.core import X`` fails."""


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        raise _NotInNbdeploy(
            f"azureml.core.{name} is not available in nbdeploy, which covers model deployment "
            "(register, environment, deploy, score, update), not training or Azure data services."
        )
    raise AttributeError(f"module 'azureml.core' has no attribute {name!r}")


__all__ = ["VERSION", "ComputeTarget", "Environment", "Image", "Model", "Webservice", "Workspace"]
