"""The notebook layer: IPython magics (``%load_ext nbdeploy``) and ipywidgets panels.

Names are imported lazily so ``%load_ext nbdeploy`` stays cheap; ipywidgets loads only when a widget is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeploymentPanel": "nbdeploy.notebook.widgets.deployment_panel",
    "ModelBrowser": "nbdeploy.notebook.widgets.model_browser",
    "ServicesBoard": "nbdeploy.notebook.widgets.services_board",
    "WidgetSink": "nbdeploy.notebook.widgets.sink",
    "NbdeployMagics": "nbdeploy.notebook.magics",
    "load_ipython_extension": "nbdeploy.notebook.magics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nbdeploy.notebook' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
