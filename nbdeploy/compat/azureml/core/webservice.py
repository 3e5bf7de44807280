"""Mirror of ``azureml.core.webservice``."""

from nbdeploy.compat.azureml._v1 import AciWebservice, AksWebservice, LocalWebservice, Webservice
from nbdeploy.compat.azureml.exceptions import WebserviceException

__all__ = ["AciWebservice", "AksWebservice", "LocalWebservice", "Webservice", "WebserviceException"]
