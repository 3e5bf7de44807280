"""``ModelBrowser``: search registered models by name and tags; see versions, files, size, tags and
properties; download, deploy through a small form, delete with confirmation."""

from __future__ import annotations

import threading
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import List, Unicode

from nbdeploy.notebook.widgets._poller import Poller
from nbdeploy.targets.registry import DEFAULT_TARGET, target_names

if TYPE_CHECKING:
    from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel
    from nbdeploy.registry import Model
    from nbdeploy.workspace import Workspace


def _label(model: Model) -> str:
    """A version's line in the list: id, tags and registration date."""
    tags = ", ".join(f"{k}={v}" if v else k for k, v in list(model.tags.items())[:3])
    return f"{model.id}  ({model.created_time:%Y-%m-%d %H:%M}{', ' + tags if tags else ''})"


class ModelBrowser(w.VBox):
    """The model registry as a panel. Every button calls a public method (``search``, ``select``, ``download``,
    ``deploy``, ``request_delete``/``confirm_delete``), so tests drive it without a browser."""

    results = List(Unicode(), help="Model ids ('name:version') matching the search.")
    selected = Unicode("", help="The model id shown in the details.")
    message = Unicode("", help="The outcome of the last action.")

    def __init__(
        self, workspace: Workspace | str | None = None, poll_interval: float = 5.0, poll: bool = True, **kwargs: Any
    ) -> None:
        self._workspace = workspace
        self._deploying: threading.Thread | None = None
        self.name_box = w.Text(description="Name", placeholder="model name (part of it)")
        self.tags_box = w.Text(description="Tags", placeholder="area=health, stage")
        self.search_button = w.Button(description="Search", icon="search")
        self.versions = w.Select(description="Versions", options=[], rows=6)
        self.details = w.HTML()
        self.download_dir = w.Text(description="Folder", value="downloads")
        self.download_button = w.Button(description="Download", icon="download")
        self.service_box = w.Text(description="Service", placeholder="my-service")
        self.entry_box = w.Text(description="Entry", value="score.py")
        self.env_box = w.Text(description="Env", placeholder="(optional) environment name")
        self.target_box = w.Dropdown(description="Target", options=target_names(), value=DEFAULT_TARGET)
        self.deploy_button = w.Button(description="Deploy", icon="rocket", button_style="primary")
        self.delete_button = w.Button(description="Delete version", icon="trash", button_style="danger")
        self.confirm_box = w.HBox(
            [
                w.HTML("Delete this model version?"),
                w.Button(description="Yes, delete", button_style="danger"),
                w.Button(description="Cancel"),
            ],
            layout=w.Layout(display="none"),
        )
        self.message_html = w.HTML()
        self.panel_box = w.VBox()
        self.search_button.on_click(lambda _: self.search())
        self.versions.observe(lambda change: change["new"] and self.select(change["new"]), "value")
        self.download_button.on_click(lambda _: self.download(self.download_dir.value))
        self.deploy_button.on_click(
            lambda _: self.deploy_in_background(
                self.service_box.value, self.entry_box.value, self.env_box.value or None, self.target_box.value
            )
        )
        self.delete_button.on_click(lambda _: self.request_delete())
        self.confirm_box.children[1].on_click(lambda _: self.confirm_delete())
        self.confirm_box.children[2].on_click(lambda _: self.cancel_delete())
        super().__init__(
            [
                w.HTML("<b style='font-size:1.2em'>nbdeploy models</b>"),
                w.HBox([self.name_box, self.tags_box, self.search_button]),
                w.HBox([self.versions, self.details]),
                w.HBox([self.download_dir, self.download_button]),
                w.HBox([self.service_box, self.entry_box, self.env_box, self.target_box, self.deploy_button]),
                w.HBox([self.delete_button, self.confirm_box]),
                self.message_html,
                self.panel_box,
            ],
            **kwargs,
        )
        self.add_class("nbdeploy-model-browser")
        self.search()
        self.poller = Poller(self.search, poll_interval, name="nbdeploy-model-browser")  # new versions appear
        if poll:
            self.poller.start()

    # -- finding -----------------------------------------------------------------------------------
    def search(self, name: str | None = None, tags: str | None = None) -> list[str]:
        """Model versions whose name contains ``name`` and that have every ``key``/``key=value`` tag."""
        from nbdeploy.registry import Model

        name = self.name_box.value if name is None else name
        tags = self.tags_box.value if tags is None else tags
        tag_filters = [t.strip() for t in (tags or "").split(",") if t.strip()]
        models = Model.list(tags=tag_filters or None, workspace=self._workspace)
        needle = (name or "").strip().lower()
        found = [m for m in models if needle in m.name.lower()]
        results = [m.id for m in found]
        if results == list(self.results) and self.versions.options:
            return results  # unchanged: keep the selection and the scroll position
        self.results = results
        self.versions.options = [(_label(m), m.id) for m in found]
        if self.selected not in self.results:
            self.selected = ""
            self.details.value = "<i>No model matches.</i>" if not self.results else "<i>Select a version.</i>"
        return list(self.results)

    def _model(self) -> Model:
        from nbdeploy.registry import Model

        if not self.selected:
            raise ValueError("select a model version first")
        return Model.get(self.selected, workspace=self._workspace)

    def select(self, model_id: str) -> Model:
        """Show a version's files, size, tags, properties and users."""
        from nbdeploy.registry import Model
        from nbdeploy.registry.model import human_size

        model = Model.get(model_id, workspace=self._workspace)
        self.selected = model.id
        if self.versions.value != model.id and model.id in self.versions.options:
            self.versions.value = model.id

        def kv(d: dict[str, str]) -> str:
            return ", ".join(f"<code>{escape(k)}={escape(v)}</code>" for k, v in d.items()) or "-"

        files = "".join(f"<li><code>{escape(f)}</code></li>" for f in model.files[:50])
        description = f"<i>{escape(model.description)}</i><br>" if model.description else ""
        self.details.value = (
            f"<b>{escape(model.id)}</b> ({human_size(model.size)})<br>{description}tags: {kv(model.tags)}<br>"
            f"properties: {kv(model.properties)}<br>used by: {escape(', '.join(model.used_by()) or '-')}"
            f"<br>created {model.created_time:%Y-%m-%d %H:%M}<ul>{files}</ul>"
        )
        return model

    # -- actions -------------------------------------------------------------------------------------
    def download(self, target_dir: str = "downloads") -> str:
        """Download the selected version into ``target_dir``; returns the path."""
        path = self._model().download(target_dir, exist_ok=True)
        self._say(f"downloaded to {path}")
        return path

    def deploy_in_background(
        self, service: str, entry_script: str = "score.py", environment: str | None = None, target: str = DEFAULT_TARGET
    ) -> threading.Thread:
        """The Deploy button: deploy on a thread, so the kernel stays free while the panel shows the progress."""
        if self._deploying is not None and self._deploying.is_alive():
            self._say("a deploy from this browser is still running", error=True)
            return self._deploying

        def work() -> None:
            try:
                self.deploy(service, entry_script, environment, target)
            except Exception as exc:  # noqa: BLE001 - shown in the widget, the thread must not die silently
                self._say(str(exc).partition("\n")[0], error=True)

        self._deploying = threading.Thread(target=work, name=f"nbdeploy-deploy-{service}", daemon=True)
        self._deploying.start()
        return self._deploying

    def deploy(
        self,
        service: str,
        entry_script: str = "score.py",
        environment: str | None = None,
        target: str = DEFAULT_TARGET,
        wait: bool = True,
    ) -> DeploymentPanel:
        """Deploy the selected version as ``service`` (blocking); the DeploymentPanel shows the progress."""
        from nbdeploy.errors import NbdeployError
        from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel
        from nbdeploy.notebook.widgets.sink import WidgetSink
        from nbdeploy.service import deploy
        from nbdeploy.specs import InferenceConfig, deployment_config_class
        from nbdeploy.specs.environment_store import load_environment
        from nbdeploy.workspace import as_workspace

        ws = as_workspace(self._workspace)
        env = load_environment(ws, environment) if environment else None
        svc = deploy(
            service,
            [self._model()],
            InferenceConfig(entry_script, environment=env),
            deployment_config_class(target)(),
            workspace=ws,
        )
        panel = DeploymentPanel(svc)
        self.panel_box.children = [panel]
        if wait:
            try:
                svc.wait_for_deployment(sink=WidgetSink(panel, display=False))
            except NbdeployError as exc:
                self._say(str(exc).partition("\n")[0], error=True)
                return panel
        self._say(f"deployed {service}")
        return panel

    def request_delete(self) -> None:
        self.confirm_box.layout.display = "flex"

    def cancel_delete(self) -> None:
        self.confirm_box.layout.display = "none"

    def confirm_delete(self) -> None:
        """Delete the selected version (refused with a message while services use it)."""
        from nbdeploy.errors import NbdeployError

        self.confirm_box.layout.display = "none"
        model = self._model()
        try:
            model.delete()
        except NbdeployError as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"deleted {model.id}")
        self.search()

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        self.message_html.value = f"<span style='color:{'#cf222e' if error else '#1a7f37'}'>{escape(text)}</span>"

    def close(self) -> None:
        self.poller.stop()
        for child in self.panel_box.children:
            child.close()
        super().close()

    def __repr__(self) -> str:
        return f"ModelBrowser({len(self.results)} versions)"
