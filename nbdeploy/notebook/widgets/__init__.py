"""Live panels composed from stock ipywidgets: state lives in traitlets, every button is also a method."""

from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel
from nbdeploy.notebook.widgets.model_browser import ModelBrowser
from nbdeploy.notebook.widgets.services_board import ServicesBoard
from nbdeploy.notebook.widgets.sink import WidgetSink

__all__ = ["DeploymentPanel", "ModelBrowser", "ServicesBoard", "WidgetSink"]
