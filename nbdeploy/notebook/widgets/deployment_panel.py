"""``DeploymentPanel``: one service, live: state badge and reason, start-up progress, endpoints, a test box
with response and latency, a log tail with follow, update and delete (with confirmation)."""

from __future__ import annotations

import json
import threading
import time
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Bool, Float, List, Unicode

from nbdeploy.notebook.widgets._html import badge, link
from nbdeploy.notebook.widgets._poller import Poller

if TYPE_CHECKING:
    from nbdeploy.service import Webservice
    from nbdeploy.workspace import Workspace

MAX_PROGRESS_LINES = 200


def _pre(text: str, placeholder: str = "") -> str:
    body = escape(text) if text else f"<i>{escape(placeholder)}</i>"
    return f"<pre style='max-height:14em;overflow:auto;margin:0;font-size:11px;line-height:1.3'>{body}</pre>"


class DeploymentPanel(w.VBox):
    """A live view of one service. Every button calls a public method, so tests drive it without a browser."""

    service_name = Unicode("", help="The service shown.")
    state = Unicode("", help="Last observed state (Transitioning, Healthy, Unhealthy, Failed ...).")
    reason = Unicode("", help="Why the state is not Healthy.")
    scoring_uri = Unicode("", help="Where /score answers.")
    progress = List(Unicode(), help="Build and start-up lines reported while deploying or updating.")
    log_tail = Unicode("", help="The last lines of the service log.")
    following = Bool(False, help="Whether the log tail refreshes with every poll.")
    last_response = Unicode("", help="The last test-box answer (or error).")
    last_latency_ms = Float(0.0, help="Latency of the last test-box request.")
    deleted = Bool(False, help="The service was deleted from this panel.")
    operation = Unicode("", help="The operation in flight or last finished here (a deploy or update) and its step.")
    operation_failed = Bool(False, help="The last operation failed (the service itself may still be Healthy).")

    def __init__(
        self,
        service: Webservice | str,
        workspace: Workspace | str | None = None,
        poll_interval: float = 2.0,
        poll: bool = True,
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._workspace = workspace if workspace is not None else getattr(service, "workspace", None)
        self._service: Webservice | None = None if isinstance(service, str) else service
        self._closed = False
        self.header = w.HTML()
        self.reason_html = w.HTML()
        self.operation_html = w.HTML()
        self.progress_html = w.HTML(_pre("", "no progress yet"))
        self.endpoints_html = w.HTML()
        self.test_input = w.Textarea(placeholder='{"data": [[...]]}', layout=w.Layout(width="100%", height="4em"))
        self.test_button = w.Button(description="Score", icon="play", button_style="primary")
        self.response_html = w.HTML()
        self.logs_button = w.Button(description="Refresh logs", icon="refresh")
        self.follow_toggle = w.ToggleButton(description="Follow", icon="eye", value=False)
        self.logs_html = w.HTML(_pre("", "press Refresh logs"))
        self.update_button = w.Button(description="Update (reload)", icon="upload")
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.confirm_box = w.HBox(
            [
                w.HTML("Delete this service?"),
                w.Button(description="Yes, delete", button_style="danger"),
                w.Button(description="Cancel"),
            ],
            layout=w.Layout(display="none"),
        )
        self.test_button.on_click(lambda _: self.score(self.test_input.value))
        self.logs_button.on_click(lambda _: self.refresh_logs())
        self.follow_toggle.observe(lambda change: self.follow(bool(change["new"])), "value")
        self.update_button.on_click(lambda _: self.update())
        self.delete_button.on_click(lambda _: self.request_delete())
        self.confirm_box.children[1].on_click(lambda _: self.confirm_delete())
        self.confirm_box.children[2].on_click(lambda _: self.cancel_delete())
        sections = [
            self.header,
            self.reason_html,
            self.operation_html,
            w.HTML("<b>Progress</b>"),
            self.progress_html,
            w.HTML("<b>Endpoints</b>"),
            self.endpoints_html,
            w.HTML("<b>Test</b>"),
            w.HBox([self.test_input, self.test_button]),
            self.response_html,
            w.HTML("<b>Log tail</b>"),
            w.HBox([self.logs_button, self.follow_toggle]),
            self.logs_html,
            w.HBox([self.update_button, self.delete_button]),
            self.confirm_box,
        ]
        super().__init__(sections, layout=w.Layout(border="1px solid #d0d7de", padding="8px", width="100%"), **kwargs)
        self.add_class("nbdeploy-deployment-panel")
        self.service_name = service if isinstance(service, str) else service.name
        self.observe(
            self._render_header, ["state", "reason", "service_name", "deleted", "operation", "operation_failed"]
        )
        self.observe(self._render_endpoints, ["scoring_uri", "state", "deleted"])
        self._render_header()
        self._render_endpoints()
        self.poller = Poller(self.refresh, poll_interval, name=f"nbdeploy-panel-{self.service_name}")
        if poll:
            self.poller.start()

    # -- the service -------------------------------------------------------------------------------
    @property
    def service(self) -> Webservice | None:
        """The Webservice shown (looked up by name when the panel was made from a name)."""
        if self._service is None and not self.deleted:
            from nbdeploy.errors import ServiceNotFound
            from nbdeploy.service import Webservice

            try:
                self._service = Webservice(self.service_name, self._workspace)
            except ServiceNotFound:
                return None
        return self._service

    @property
    def closed(self) -> bool:
        return self._closed

    # -- live state ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Observe the service now (the poller calls this); also refreshes the log tail when following."""
        if self._closed or self.deleted:
            return
        from nbdeploy.errors import NbdeployError, ServiceNotFound
        from nbdeploy.service import Webservice

        try:
            # a fresh handle each time: an update elsewhere may have switched the serving revision
            svc = self._service = Webservice(self.service_name, self._workspace)
            status = svc.status()
        except ServiceNotFound:
            self.set_state("Deleted", "the service was deleted")
            self.poller.stop()
            return
        except NbdeployError as exc:
            self.set_state("Unknown", str(exc))
            return
        self.set_state(str(status.state), status.reason, status.scoring_uri or svc.scoring_uri)
        self._render_header()
        if self.following:
            self.refresh_logs()

    def set_state(self, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        with self._lock:
            self.state, self.reason = state, reason
            if scoring_uri:
                self.scoring_uri = scoring_uri

    def set_operation(self, text: str, failed: bool = False) -> None:
        """Show what the operation in flight is doing (or how the last one ended), beside the serving state."""
        with self._lock:
            self.operation, self.operation_failed = text, failed

    def add_line(self, text: str) -> None:
        """Append a build or start-up line to the progress section."""
        with self._lock:
            self.progress = (self.progress + [text])[-MAX_PROGRESS_LINES:]
            self.progress_html.value = _pre("\n".join(self.progress[-40:]))

    # -- test box ----------------------------------------------------------------------------------
    def score(self, body: str | dict[str, Any] | list[Any]) -> Any:
        """POST ``body`` to the service; shows and returns the answer (None on error, shown in red)."""
        svc = self.service
        if svc is None:
            self._show_response("no such service", error=True)
            return None
        from nbdeploy.errors import NbdeployError

        started = time.perf_counter()
        try:
            answer = svc.run(body)
        except NbdeployError as exc:
            self.last_latency_ms = (time.perf_counter() - started) * 1000
            self._show_response(str(exc), error=True)
            return None
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        self._show_response(json.dumps(answer) if not isinstance(answer, (str, bytes)) else str(answer))
        return answer

    def _show_response(self, text: str, error: bool = False) -> None:
        self.last_response = text
        color = "#cf222e" if error else "inherit"
        self.response_html.value = (
            f"<div style='color:{color}'><code>{escape(text[:2000])}</code>"
            f" <small>({self.last_latency_ms:.1f} ms)</small></div>"
        )

    # -- logs --------------------------------------------------------------------------------------
    def refresh_logs(self, num_lines: int = 50) -> str:
        """Fetch the last ``num_lines`` log lines into the log tail."""
        svc = self.service
        if svc is None:
            return ""
        from nbdeploy.errors import NbdeployError

        try:
            text = svc.get_logs(num_lines)
        except NbdeployError as exc:
            text = str(exc)
        self.log_tail = text
        self.logs_html.value = _pre(text, "(empty log)")
        return text

    def follow(self, on: bool = True) -> None:
        """Refresh the log tail with every poll while ``on``."""
        self.following = on
        if self.follow_toggle.value != on:
            self.follow_toggle.value = on
        if on:
            self.refresh_logs()

    # -- update and delete -----------------------------------------------------------------------------
    def update(self, **kwargs: Any) -> None:
        """``Webservice.update(**kwargs)`` (default: reload the entry script), progress shown here."""
        svc = self.service
        if svc is None:
            return
        from nbdeploy.errors import NbdeployError
        from nbdeploy.notebook.widgets.sink import WidgetSink

        try:
            svc.update(sink=WidgetSink(self), **kwargs)
        except NbdeployError as exc:
            self.add_line(f"update failed: {exc}")
            self.set_operation(f"update failed: {getattr(exc, 'reason', exc)}", failed=True)
        self.refresh()

    def request_delete(self) -> None:
        """Ask for confirmation before deleting."""
        self.confirm_box.layout.display = "flex"

    def cancel_delete(self) -> None:
        self.confirm_box.layout.display = "none"

    def confirm_delete(self) -> None:
        """Delete the service (all revisions) and stop polling."""
        svc = self.service
        self.confirm_box.layout.display = "none"
        if svc is None:
            return
        svc.delete()
        self.deleted = True
        self.poller.stop()
        self.set_state("Deleted", "deleted from this panel")
        for button in (self.test_button, self.update_button, self.delete_button, self.logs_button):
            button.disabled = True

    # -- rendering ---------------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Whether the service can be scored (not Failed, Deleted or gone)."""
        return not self.deleted and self.state not in ("Failed", "Deleted", "Unknown")

    def _render_header(self, _: Any = None) -> None:
        target = ""
        if self._service is not None:
            target = f" on <code>{escape(self._service.target)}</code>"
        revision = f" &nbsp; revision {self._service.revision}" if self._service is not None and self.state else ""
        self.header.value = (
            f"<b style='font-size:1.2em'>{escape(self.service_name)}</b>{target} &nbsp; {badge(self.state)}{revision}"
        )
        self.reason_html.value = f"<small>{escape(self.reason)}</small>" if self.reason else ""
        color = "#cf222e" if self.operation_failed else "#57606a"
        self.operation_html.value = (
            f"<div style='color:{color}'><small>{escape(self.operation)}</small></div>" if self.operation else ""
        )
        gone = self.deleted or self.state == "Deleted"
        self.test_button.disabled = not self.serving
        self.update_button.disabled = gone or self.state == "Failed"
        self.delete_button.disabled = gone

    def _render_endpoints(self, _: Any = None) -> None:
        uri = self.scoring_uri if self.serving else ""
        swagger = uri.rsplit("/", 1)[0] + "/swagger.json" if uri else None
        self.endpoints_html.value = f"scoring: {link(uri or None)}<br>swagger: {link(swagger)}"

    def close(self) -> None:
        """Stop the poller and close the widgets (the service itself keeps running)."""
        self._closed = True
        self.poller.stop()
        for child in self.children:
            child.close()
        super().close()

    def __repr__(self) -> str:
        return f"DeploymentPanel({self.service_name!r}, state={self.state!r})"
