"""Mirror of ``azureml.contrib.services.aml_response`` (``AMLResponse``)."""

from nbdeploy.server.response import AMLResponse

__all__ = ["AMLResponse"]
