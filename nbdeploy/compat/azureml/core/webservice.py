"""Mirror of ``azureml.core.webservice``."""

from nbdeploy.compat.azureml._v1 import AciWebservice, AksWebservice, LocalWebservice, Webservice

__all__ = ["AciWebservice", "AksWebservice", "LocalWebservice", "Webservice"]
