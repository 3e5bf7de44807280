"""Mirror of ``azureml.contrib.services.aml_request`` (``rawhttp``, ``AMLRequest``): try an entry script in the kernel.

Inside a deployment the scoring server provides this module itself (see nbdeploy/server/shims.py).
"""

from nbdeploy.server.request import AMLRequest, rawhttp

__all__ = ["AMLRequest", "rawhttp"]
