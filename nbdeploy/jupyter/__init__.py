"""The jupyter_server extension behind nbdeploy's JupyterLab side panel.

Enabled on install by ``jupyter-config/jupyter_server_config.d/nbdeploy.json`` (installed as shared data);
by hand: ``jupyter server extension enable nbdeploy.jupyter``. Routes live under ``/nbdeploy/api/``
(see :mod:`nbdeploy.jupyter.handlers` and docs/lab.md).
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbdeploy.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the REST and event-stream handlers to the running server."""
    from nbdeploy.jupyter.handlers import setup_handlers

    setup_handlers(serverapp)
    serverapp.log.info("nbdeploy: side panel API at %snbdeploy/api/", serverapp.base_url)


# jupyter_server < 2 spelling
load_jupyter_server_extension = _load_jupyter_server_extension
