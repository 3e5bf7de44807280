"""Services: deploy, observe, score, update (never breaking the serving revision), and delete.

:func:`deploy` creates a service from registered models, an :class:`~nbdeploy.specs.InferenceConfig` and a
deployment config; :class:`Webservice` is the handle users keep. The target does the running; this module
does the bookkeeping (records and revision history in the workspace database), the state machine and
the update protocol:

1. start the new revision beside the serving one (``Target.start(spec, previous=handle)``);
2. wait until it is Healthy and answers a smoke request on a URL that reaches it alone;
3. ``Target.promote`` moves traffic, the record switches, ``Target.retire`` drains the old one;
4. on any failure ``Target.abort`` removes the new revision, the old one keeps serving, and
   :class:`~nbdeploy.errors.UpdateFailed` carries the new revision's evidence; the history records it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import httpx

from nbdeploy.builders.bundle import Bundle, create_bundle
from nbdeploy.errors import (
    AlreadyExists,
    DeployError,
    DeploymentFailed,
    InvalidInput,
    InvalidName,
    NbdeployError,
    ScoringError,
    ServiceNotFound,
    UpdateFailed,
)
from nbdeploy.progress import ProgressSink, make_sink
from nbdeploy.registry import Model
from nbdeploy.service_records import DELETING, FAILED, SERVING, STARTING, ServiceRecord, ServiceStore
from nbdeploy.specs import DeploymentConfig, Environment, InferenceConfig, ProcessDeploymentConfig, deployment_config_from_dict
from nbdeploy.targets.base import Handle, RevisionSpec, State, Status, Target, get_target
from nbdeploy.workspace import Workspace, as_workspace

if TYPE_CHECKING:
    from os import PathLike

log = logging.getLogger(__name__)

SERVICE_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
ModelRef = Union[Model, str]
DEFAULT_TIMEOUT_S = 600.0


def validate_service_name(name: str) -> None:
    """v1's rule: 3-32 characters, lower-case letters, digits and '-', starting with a letter."""
    if not isinstance(name, str) or not (3 <= len(name) <= 32) or not SERVICE_NAME_RE.fullmatch(name):
        raise InvalidName("service", str(name), "use 3-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'")


def resolve_models(models: Iterable[ModelRef] | ModelRef, workspace: Workspace) -> list[Model]:
    """Model objects for ``Model`` instances or ``"name"`` / ``"name:version"`` strings."""
    if isinstance(models, (Model, str)):
        models = [models]
    resolved = []
    for ref in models:
        if isinstance(ref, Model):
            resolved.append(ref)
        elif isinstance(ref, str):
            name, _, version = ref.partition(":")
            resolved.append(Model.get(name, int(version) if version else None, workspace=workspace))
        else:
            raise InvalidInput(f"models: expected Model objects or 'name[:version]' strings, got {type(ref).__name__}")
    if not resolved:
        raise InvalidInput("models: deploy needs at least one registered model")
    return resolved


def deploy(
    name: str,
    models: Iterable[ModelRef] | ModelRef,
    inference_config: InferenceConfig,
    deployment_config: DeploymentConfig | None = None,
    overwrite: bool = False,
    workspace: Workspace | PathLike[str] | str | None = None,
    show_output: bool = False,
    sink: ProgressSink | None = None,
) -> Webservice:
    """Start a service and return it (Transitioning); call :meth:`Webservice.wait_for_deployment` to wait.

    Build and start-up lines (an image build, an isolated environment) go to ``sink`` (plain lines with
    ``show_output=True``).
    """
    validate_service_name(name)
    ws = as_workspace(workspace)
    if not isinstance(inference_config, InferenceConfig):
        raise InvalidInput("inference_config: expected an InferenceConfig(entry_script=..., environment=...)")
    config = deployment_config or ProcessDeploymentConfig()
    model_objs = resolve_models(models, ws)
    store = ServiceStore(ws)
    exists = name in store.names()
    if exists and not overwrite:
        raise AlreadyExists(f"A service named {name!r} exists already; pass overwrite=True (--overwrite) or choose another name.")
    target = get_target(config.target, ws)
    progress = sink or make_sink(show_output, workspace=ws)
    target.progress = lambda line: progress.line(name, line)
    bundle = create_bundle(ws, model_objs, inference_config)
    keys = _keys_for(config)
    if exists:
        Webservice(name, ws).delete()
    spec = _revision_spec_doc(model_objs, inference_config, config, bundle)
    store.create(name, config.target, spec, [m.id for m in model_objs], config.tags, config.properties, config.description, keys)
    revision = RevisionSpec(name, 1, bundle, config, inference_config.environment, keys)
    try:
        handle = target.start(revision)
    except BaseException:
        store.delete(name)  # nothing half-done: no record without a running revision
        raise
    store.set_handle(name, 1, handle)
    return Webservice(name, ws)


class Webservice:
    """A deployed service, found by name in the workspace (``Webservice("diabetes-svc")``)."""

    def __init__(self, name: str, workspace: Workspace | PathLike[str] | str | None = None) -> None:
        self.workspace = as_workspace(workspace)
        self._store = ServiceStore(self.workspace)
        self._record: ServiceRecord = self._store.get(name)
        self._client: httpx.Client | None = None
        self._deleted = False
        self._last_status: Status | None = None
        self._target_obj: Target | None = None
        self._run_uri: tuple[int, str] | None = None
        """(revision, scoring URI) for run(): resolving it may cost I/O (a Kubernetes node list)."""

    # -- listing ---------------------------------------------------------------------------------
    @classmethod
    def list(cls, workspace: Workspace | PathLike[str] | str | None = None, target: str | None = None,
             model_name: str | None = None, tags: Sequence[str] | None = None) -> list[Webservice]:
        """Services in the workspace, filtered by target, model name and ``key``/``key=value`` tags."""
        ws = as_workspace(workspace)
        services = [cls(r.name, ws) for r in ServiceStore(ws).list() if target is None or r.target == target]
        if model_name:
            services = [s for s in services if any(m.partition(":")[0] == model_name for m in s.models)]
        for tag in tags or []:
            key, _, value = tag.partition("=")
            services = [s for s in services if key in s.tags and (not value or s.tags[key] == value)]
        return services

    # -- attributes ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def compute_type(self) -> str:
        return self._record.target

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._record.properties)

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def created_time(self) -> str:
        return self._record.created_time

    @property
    def updated_time(self) -> str:
        return self._record.updated_time

    @property
    def auth_enabled(self) -> bool:
        return self._record.keys is not None

    @property
    def revision(self) -> int:
        return int(self._record.current_revision or 1)

    def _current(self) -> tuple[Handle | None, dict[str, Any]]:
        record = self._store.revision(self.name, self.revision)
        return record.handle, record.spec

    @property
    def models(self) -> list[str]:
        return list(self._current()[1]["models"])

    @property
    def deployment_config(self) -> DeploymentConfig:
        """The serving revision's deployment config."""
        return deployment_config_from_dict(self._current()[1]["deployment_config"])

    @property
    def inference_config(self) -> InferenceConfig:
        """The serving revision's inference config (entry script re-read from its path)."""
        return _inference_config_from_doc(self._current()[1]["inference_config"])

    @property
    def port(self) -> int | None:
        handle = self._current()[0]
        return handle.get("port") if handle else None

    @property
    def scoring_uri(self) -> str | None:
        handle = self._current()[0]
        if not handle:
            return None
        return self._target().scoring_uri(handle)

    @property
    def swagger_uri(self) -> str | None:
        return _swagger_uri(self.scoring_uri)

    @property
    def image(self) -> str | None:
        handle = self._current()[0]
        return handle.get("image") if handle else None

    @property
    def state(self) -> str:
        """The state now (observed from the target)."""
        return str(self.status().state)

    @property
    def error(self) -> dict[str, str] | None:
        """``{"reason", "evidence"}`` when the service is not Healthy, else None."""
        status = self._last_status or self.status()
        if status.state == State.HEALTHY:
            return None
        return {"state": str(status.state), "reason": status.reason, "evidence": status.evidence}

    def status(self) -> Status:
        """Observe the serving revision now."""
        self._check_not_deleted()
        record = self._store.revision(self.name, self.revision)
        handle = record.handle
        if record.outcome == DELETING:
            status = Status(State.DELETING, "delete() is stopping the service")
        elif handle is None:
            status = Status(State.TRANSITIONING, "starting")
        else:
            status = self._target().status(handle)
        self._last_status = status
        return status

    def _target(self) -> Target:
        if self._target_obj is None:
            self._target_obj = get_target(self._record.target, self.workspace)
        return self._target_obj

    def _check_not_deleted(self) -> None:
        if self._deleted:
            raise ServiceNotFound(self.name, hint="It was deleted.")

    # -- waiting ---------------------------------------------------------------------------------
    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None, sink: ProgressSink | None = None) -> Status:
        """Wait until the service is Healthy; raise :class:`DeploymentFailed` with state, reason and log tail otherwise."""
        sink = sink or make_sink(show_output, workspace=self.workspace)
        handle, _ = self._current()
        status = _wait(self._target(), handle, self.name, sink, timeout_sec or DEFAULT_TIMEOUT_S) if handle else self.status()
        self._last_status = status
        self._record_outcome(status)
        sink.finish(self.name, str(status.state), status.reason, status.scoring_uri)
        if status.state != State.HEALTHY:
            raise DeploymentFailed(self.name, str(status.state), status.reason, _evidence(status, self))
        return status

    def _record_outcome(self, status: Status) -> None:
        """Write the first final state of a starting revision into its history."""
        record = self._store.revision(self.name, self.revision)
        if record.outcome == STARTING and status.state.is_final:
            outcome = SERVING if status.state == State.HEALTHY else FAILED
            self._store.finish_revision(self.name, self.revision, outcome, str(status.state), status.reason, status.evidence)

    def update_deployment_state(self) -> str:
        """v1 spelling: refresh and return the state."""
        return self.state

    # -- scoring ---------------------------------------------------------------------------------
    def run(self, input_data: str | bytes | dict[str, Any] | list[Any], timeout: float = 60.0) -> Any:
        """POST ``input_data`` to /score as given (dicts and lists are JSON-encoded) and return the parsed answer."""
        self._check_not_deleted()
        if self._run_uri is None or self._run_uri[0] != self.revision:
            found = self.scoring_uri
            self._run_uri = (self.revision, found) if found else None
        uri = self._run_uri[1] if self._run_uri else None
        if uri is None:
            raise DeployError(self.name, self.state, "the service has not started yet")
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._record.keys:
            headers["Authorization"] = f"Bearer {self._record.keys[0]}"
        client = self._http()
        try:
            try:
                response = client.post(uri, content=body, headers=headers, timeout=timeout)
            except httpx.RemoteProtocolError:
                # a keep-alive connection closed by a draining revision during an update: the request was not read
                response = client.post(uri, content=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            self._run_uri = None
            status = self.status()
            raise DeployError(self.name, str(status.state), f"cannot score: {exc}. {status.reason}".strip(), self.get_logs(20)) from exc
        if response.status_code == 401 and self._record.keys:
            self._record = self._store.get(self.name)  # keys may have been regenerated elsewhere
        if response.status_code != 200:
            raise ScoringError(self.name, response.status_code, response.text, dict(response.headers))
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.content if not response.headers.get("content-type", "").startswith("text/") else response.text

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(trust_env=False)
        return self._client

    # -- logs ------------------------------------------------------------------------------------
    def get_logs(self, num_lines: int = 5000) -> str:
        """The last ``num_lines`` lines of the serving revision's log."""
        self._check_not_deleted()
        handle, _ = self._current()
        return self._target().logs(handle, num_lines) if handle else ""

    def revisions(self) -> list[dict[str, Any]]:
        """The revision history: every deploy, update and reload, with its outcome and evidence."""
        return [
            {"revision": r.revision, "outcome": r.outcome, "state": r.state, "reason": r.reason,
             "created_time": r.created_time, "finished_time": r.finished_time, "models": r.spec.get("models")}
            for r in self._store.revisions(self.name)
        ]

    # -- changing --------------------------------------------------------------------------------
    def update(self, models: Iterable[ModelRef] | ModelRef | None = None, inference_config: InferenceConfig | None = None,
               deployment_config: DeploymentConfig | None = None, show_output: bool = False,
               timeout_sec: float | None = None, sink: ProgressSink | None = None) -> Webservice:
        """Start a new revision beside the serving one and switch only when it is Healthy and answers a smoke request."""
        self._check_not_deleted()
        _, spec_doc = self._current()
        model_objs = resolve_models(models, self.workspace) if models is not None else resolve_models(spec_doc["models"], self.workspace)
        ic = inference_config or self.inference_config
        dc = deployment_config or self.deployment_config
        if dc.target != self._record.target:
            raise InvalidInput(f"deployment_config is for target {dc.target!r} but {self.name!r} runs on {self._record.target!r}; delete and redeploy to move it.")
        return self._roll_out(model_objs, ic, dc, sink or make_sink(show_output, workspace=self.workspace), timeout_sec or DEFAULT_TIMEOUT_S)

    def reload(self, show_output: bool = False, sink: ProgressSink | None = None) -> Webservice:
        """Re-read the entry script and source folder and restart on them (no rebuild), without downtime."""
        return self.update(show_output=show_output, sink=sink)

    def _roll_out(self, models: list[Model], ic: InferenceConfig, dc: DeploymentConfig, sink: ProgressSink, timeout: float) -> Webservice:
        target = self._target()
        target.progress = lambda line: sink.line(self.name, line)
        old_revision = self.revision
        old_handle, _ = self._current()
        bundle = create_bundle(self.workspace, models, ic)
        keys = self._record.keys if dc.auth_enabled or self._record.keys else None
        if dc.auth_enabled and keys is None:
            keys = _keys_for(dc)
        doc = _revision_spec_doc(models, ic, dc, bundle)
        new_revision = self._store.add_revision(self.name, doc)
        sink.state(self.name, str(State.TRANSITIONING), f"revision {new_revision} starting beside revision {old_revision}")
        try:
            new_handle = target.start(RevisionSpec(self.name, new_revision, bundle, dc, ic.environment, keys), previous=old_handle)
        except Exception as exc:
            self._store.finish_revision(self.name, new_revision, FAILED, str(State.FAILED), f"could not start: {exc}")
            if isinstance(exc, NbdeployError):
                raise UpdateFailed(self.name, str(State.FAILED), f"revision {new_revision} could not start: {exc}") from exc
            raise
        self._store.set_handle(self.name, new_revision, new_handle)
        try:
            status = _wait(target, new_handle, self.name, sink, timeout)
            problem = "" if status.state == State.HEALTHY else f"{status.state}: {status.reason}"
            if not problem:
                problem = _smoke(target, new_handle, dc, keys)
            if not problem:
                new_handle = target.promote(new_handle, old_handle)
        except BaseException as exc:  # interrupted, or the promotion failed: the old revision keeps serving
            target.abort(new_handle, old_handle)
            self._store.finish_revision(self.name, new_revision, FAILED, str(State.FAILED), f"update stopped: {exc!r}")
            if isinstance(exc, NbdeployError):
                raise UpdateFailed(self.name, str(State.FAILED), f"revision {new_revision} was not promoted ({exc}); revision {old_revision} keeps serving") from exc
            raise
        if problem:
            evidence = status.evidence or target.logs(new_handle, 60)
            target.abort(new_handle, old_handle)
            self._store.finish_revision(self.name, new_revision, FAILED, str(status.state if status.state != State.HEALTHY else State.UNHEALTHY), problem, evidence)
            sink.finish(self.name, "Failed", f"update rolled back, revision {old_revision} keeps serving: {problem}")
            raise UpdateFailed(self.name, str(status.state), f"revision {new_revision} did not become Healthy ({problem}); revision {old_revision} keeps serving", evidence)
        self._store.set_handle(self.name, new_revision, new_handle)
        self._store.switch(self.name, new_revision, old_revision, [m.id for m in models])
        self._store.finish_revision(self.name, new_revision, SERVING, str(State.HEALTHY))
        if old_handle is not None:
            target.retire(old_handle, new_handle)
        self._store.set_metadata(self.name, {**self._record.tags, **dc.tags}, {**self._record.properties, **dc.properties}, dc.description or self._record.description)
        if keys != self._record.keys:
            self._store.set_keys(self.name, keys)
        self._record = self._store.get(self.name)
        final = target.status(new_handle)
        sink.finish(self.name, str(final.state), final.reason, final.scoring_uri)
        return self

    def delete(self, delete_image: bool = False) -> None:
        """Stop every revision and remove the service's records and files (and its images when asked).

        Deleting twice raises ServiceNotFound.
        """
        self._check_not_deleted()
        self._record = self._store.get(self.name)  # raises if deleted elsewhere
        target = self._target()
        self._store.finish_revision(self.name, self.revision, DELETING, str(State.DELETING))  # observers see Deleting
        for rev in self._store.revisions(self.name):
            if rev.handle:
                target.stop(rev.handle)  # idempotent: replaced and failed revisions are stopped already
                if delete_image:
                    target.delete_image(rev.handle)
        self._store.delete(self.name)
        _remove_tree(self.workspace.service_dir(self.name))
        if self._client is not None:
            self._client.close()
        self._deleted = True

    # -- keys ------------------------------------------------------------------------------------
    def get_keys(self) -> tuple[str, str]:
        """(primary, secondary) auth keys."""
        if self._record.keys is None:
            raise InvalidInput(f"Service {self.name!r} has key auth off; redeploy or update with auth_enabled=True.")
        return self._record.keys

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Replace the ``Primary`` or ``Secondary`` key (with ``set_key`` or a new random one); takes effect at once."""
        which = str(key).lower()
        if which not in ("primary", "secondary"):
            raise InvalidInput(f"key must be 'Primary' or 'Secondary', got {key!r}")
        primary, secondary = self.get_keys()
        new = set_key or secrets.token_urlsafe(24)
        keys = (new, secondary) if which == "primary" else (primary, new)
        handle, _ = self._current()
        if handle:
            self._target().update_keys(handle, keys)
        self._store.set_keys(self.name, keys)
        self._record = self._store.get(self.name)

    # -- describing ------------------------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """The service record (v1 keys plus nbdeploy's)."""
        status = self.status()
        handle, spec = self._current()
        scoring = status.scoring_uri or (self._target().scoring_uri(handle) if handle else None)
        return {
            "name": self.name, "computeType": self.compute_type, "state": str(status.state),
            "error": self.error, "scoringUri": scoring, "swaggerUri": _swagger_uri(scoring),
            "port": (handle or {}).get("port"), "models": spec.get("models"), "revision": self.revision,
            "tags": self.tags, "properties": self.properties, "description": self.description,
            "createdTime": self.created_time, "updatedTime": self.updated_time, "authEnabled": self.auth_enabled,
            "image": (handle or {}).get("image"), "imageId": (handle or {}).get("image"),
            "bundleDigest": spec.get("bundle", {}).get("digest"), "workspaceName": str(self.workspace.path),
        }

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, target={self.compute_type!r}, revision={self.revision})"

    def _repr_html_(self) -> str:
        status = self._last_status or self.status()
        from html import escape

        color = {"Healthy": "#1a7f37", "Transitioning": "#9a6700"}.get(str(status.state), "#cf222e")
        reason = f"<br><small>{escape(status.reason)}</small>" if status.reason else ""
        return (f"<div><b>{escape(self.name)}</b> on <code>{escape(self.compute_type)}</code> "
                f"<span style='color:{color}'>{status.state}</span>{reason}<br>"
                f"scoring: <code>{escape(status.scoring_uri or '-')}</code><br>models: {escape(', '.join(self.models))}</div>")

    def __del__(self) -> None:
        if getattr(self, "_client", None) is not None:
            try:
                self._client.close()  # type: ignore[union-attr]
            except Exception:  # pragma: no cover
                pass


# -- helpers ---------------------------------------------------------------------------------------

def _swagger_uri(scoring_uri: str | None) -> str | None:
    """v1's rule: the scoring URI with its last path segment replaced by swagger.json."""
    return scoring_uri.rsplit("/", 1)[0] + "/swagger.json" if scoring_uri else None


def _keys_for(config: DeploymentConfig) -> tuple[str, str] | None:
    if not config.auth_enabled:
        return None
    return (config.primary_key or secrets.token_urlsafe(24), config.secondary_key or secrets.token_urlsafe(24))


def _revision_spec_doc(models: list[Model], ic: InferenceConfig, dc: DeploymentConfig, bundle: Bundle) -> dict[str, Any]:
    return {
        "models": [m.id for m in models],
        "inference_config": {
            "entry_script": str(ic.entry_script_path) if ic.source_directory is None else ic.entry_script,
            "source_directory": ic.source_directory,
            "environment": ic.environment.to_dict() if ic.environment is not None else None,
        },
        "deployment_config": dc.to_dict(),
        "bundle": {"digest": bundle.digest, "path": str(bundle.path), "entry_script": bundle.entry_script, "model_dir": bundle.model_dir},
    }


def _inference_config_from_doc(doc: dict[str, Any]) -> InferenceConfig:
    env = Environment.from_stored_dict(doc["environment"]) if doc.get("environment") else None
    return InferenceConfig(doc["entry_script"], source_directory=doc.get("source_directory"), environment=env)


def _wait(target: Target, handle: Handle, name: str, sink: ProgressSink, timeout: float) -> Status:
    """Poll the revision until Healthy or a final state; Transitioning past ``timeout`` is returned as it is."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        status = target.status(handle)
        sink.state(name, str(status.state), status.reason)
        if status.state.is_final:
            return status
        if time.monotonic() > deadline:
            status.reason = f"still {status.state} after {timeout:.0f}s: {status.reason}"
            return status
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _smoke(target: Target, handle: Handle, config: DeploymentConfig, keys: tuple[str, str] | None) -> str:
    """'' when the revision answers a smoke request on its own URL, else what went wrong."""
    base = target.smoke_uri(handle)
    if base is None:
        return ""
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            health = client.get(base + "/")
            if health.status_code != 200:
                return f"GET / answered {health.status_code}"
            body = config.smoke_input
            if body is None:
                swagger = client.get(base + "/swagger.json", params={"version": "3"}, headers=headers)
                example = swagger.json().get("components", {}).get("schemas", {}).get("ServiceInput", {}).get("example") if swagger.status_code == 200 else None
                body = json.dumps(example) if example else None
            if body is not None:
                answer = client.post(base + "/score", content=body, headers={**headers, "Content-Type": "application/json"})
                if answer.status_code >= 300:
                    return f"smoke request POST /score answered {answer.status_code}: {answer.text[:300]}"
    except (httpx.HTTPError, ValueError) as exc:
        return f"smoke request failed: {exc}"
    return ""


def _evidence(status: Status, service: Webservice) -> str:
    if status.evidence:
        return status.evidence
    try:
        return service.get_logs(40)
    except NbdeployError:  # pragma: no cover
        return ""


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
