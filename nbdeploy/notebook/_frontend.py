"""Is a widget frontend attached to this kernel? And the progress-sink factory that depends on it.

The answer decides whether ``%deploy`` and ``wait_for_deployment(show_output=True)`` show the live
:class:`~nbdeploy.notebook.widgets.DeploymentPanel` or print plain lines. In order:

1. ``NBDEPLOY_WIDGETS=1`` / ``0`` forces the answer (for frontends the rules below get wrong).
2. No kernel (terminal IPython, plain Python): no widgets.
3. ipywidgets not installed: no widgets.
4. The kernel was started by a Jupyter server for a notebook session (JupyterLab, Notebook 7, Voila set
   ``JPY_SESSION_NAME`` for the kernels they start): widgets. papermill and nbclient start their own kernel
   without it, so they get plain lines, which is what their output notebooks can show.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbdeploy.progress import ProgressSink
    from nbdeploy.workspace import Workspace

ENV_VAR = "NBDEPLOY_WIDGETS"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the notebook layer needs IPython
        return None
    return get_ipython()


def widget_frontend_present(shell: Any = None) -> bool:
    """Whether widgets displayed now will render (see the module docstring for the rules)."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in _TRUE:
        return True
    if forced in _FALSE:
        return False
    shell = shell if shell is not None else _shell()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "comm_manager", None) is None:
        return False
    if importlib.util.find_spec("ipywidgets") is None:
        return False
    return bool(os.environ.get("JPY_SESSION_NAME"))


def sink_factory(show_output: bool, workspace: Workspace | None = None) -> ProgressSink:
    """``nbdeploy.progress`` factory: the live panel with a widget frontend, plain lines otherwise."""
    from nbdeploy.progress import LoggingSink, PlainSink

    if not show_output:
        return LoggingSink()
    if widget_frontend_present():
        from nbdeploy.notebook.widgets.sink import WidgetSink

        return WidgetSink(workspace=workspace)
    return PlainSink()
