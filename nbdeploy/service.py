"""Services: deploy, observe, score, update (never breaking the serving revision), and delete.

:func:`deploy` creates a service from registered models, an :class:`~nbdeploy.specs.InferenceConfig` and a
deployment config; :class:`Webservice` is the handle users keep. Each operation builds first (the build step,
:mod:`nbdeploy.builders`), so a failed build changes nothing; the target does the running; this module does
the bookkeeping (records and revision history in the workspace database) and the state machine; updates
follow the protocol in :mod:`nbdeploy.rollout`.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from nbdeploy.builders.base import Artifact, BuildRequest, get_builder
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
)
from nbdeploy.locks import service_lock
from nbdeploy.progress import ProgressSink, make_sink
from nbdeploy.registry import Model
from nbdeploy.rollout import roll_out, smoke_check, wait_until_settled
from nbdeploy.service_records import ABORTED, DELETING, FAILED, SERVING, STARTING, ServiceRecord, ServiceStore
from nbdeploy.specs import (
    DeploymentConfig,
    Environment,
    InferenceConfig,
    deployment_config_class,
    deployment_config_from_dict,
)
from nbdeploy.targets.base import Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.registry import DEFAULT_TARGET, get_target
from nbdeploy.workspace import Workspace, as_workspace

if TYPE_CHECKING:
    from os import PathLike

log = logging.getLogger(__name__)

SERVICE_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
ModelRef = Model | str
DEFAULT_TIMEOUT_S = 600.0
SAMPLE_FILE = "last-request.body"
"""In a service's folder: the last request body it answered 200 to through :meth:`Webservice.run` (0600);
an update with no smoke input of its own checks the new revision with it."""
SAMPLE_MAX_BYTES = 256 * 1024


def validate_service_name(name: str) -> None:
    """v1's rule: 3-32 characters, lower-case letters, digits and '-', starting with a letter."""
    if not isinstance(name, str) or not (3 <= len(name) <= 32) or not SERVICE_NAME_RE.fullmatch(name):
        raise InvalidName(
            "service",
            str(name),
            "use 3-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'",
        )


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
    """Build and start a service and return it (Transitioning); :meth:`Webservice.wait_for_deployment` waits.

    ``models`` may be empty for an entry script that loads none. The build (an image, an isolated
    environment) runs first: with ``overwrite=True`` a failed build leaves the existing service serving.
    Build and start-up lines go to ``sink`` (plain lines with ``show_output=True``).
    """
    validate_service_name(name)
    ws = as_workspace(workspace)
    if not isinstance(inference_config, InferenceConfig):
        raise InvalidInput("inference_config: expected an InferenceConfig(entry_script=..., environment=...)")
    config = deployment_config or deployment_config_class(DEFAULT_TARGET)()
    model_objs = resolve_models(models, ws)
    store = ServiceStore(ws)
    if name in store.names() and not overwrite and not _never_served(store, name):
        raise AlreadyExists(
            f"A service named {name!r} exists already; pass overwrite=True (--overwrite) or choose another name."
        )
    progress = sink or make_sink(show_output, workspace=ws)
    with service_lock(ws, name, "deploy", progress=lambda line: progress.line(name, line)):
        return _deploy_locked(name, model_objs, inference_config, config, overwrite, ws, store, progress)


def _deploy_locked(
    name: str,
    model_objs: list[Model],
    inference_config: InferenceConfig,
    config: DeploymentConfig,
    overwrite: bool,
    ws: Workspace,
    store: ServiceStore,
    progress: ProgressSink,
) -> Webservice:
    exists = name in store.names()
    if exists and not overwrite:
        if not _never_served(store, name):
            raise AlreadyExists(
                f"A service named {name!r} exists already; pass overwrite=True (--overwrite) or choose another name."
            )
        progress.line(
            name, f"replacing {name}: no revision of it ever served (its deploy failed); no --overwrite needed"
        )
    target = get_target(config.target, ws)
    target.progress = lambda line: progress.line(name, line)
    bundle = create_bundle(ws, model_objs, inference_config)
    revision = RevisionSpec(name, 1, bundle, config, inference_config.environment, _keys_for(config))
    revision.artifact = build_revision(target, revision, progress)
    if exists:
        Webservice(name, ws).delete()
    spec = _revision_spec_doc(model_objs, inference_config, config, bundle, revision.artifact)
    store.create(
        name,
        config.target,
        spec,
        [m.id for m in model_objs],
        config.tags,
        config.properties,
        config.description,
        revision.keys,
    )
    try:
        handle = target.start(revision)
    except BaseException:
        store.delete(name)  # nothing half-done: no record without a running revision
        raise
    store.set_handle(name, 1, handle)
    return Webservice(name, ws)


def _never_served(store: ServiceStore, name: str) -> bool:
    """Whether every revision of ``name`` ended without serving (a failed first deploy, run again as is)."""
    revisions = store.revisions(name)
    return bool(revisions) and all(r.outcome in (FAILED, ABORTED) for r in revisions)


def build_revision(target: Target, spec: RevisionSpec, sink: ProgressSink) -> Artifact | None:
    """Run the build step for ``spec`` on ``target`` (nothing when the target runs the bundle as it is)."""
    request = BuildRequest(spec.service, spec.revision, spec.bundle, spec.config, spec.environment)
    kind = target.artifact_kind(request)
    if kind is None:
        return None
    builder = get_builder(kind, target.workspace, progress=lambda line: sink.line(spec.service, line))
    sink.state(spec.service, str(State.TRANSITIONING), f"building the {kind} of revision {spec.revision}")
    artifact = builder.build(request)
    sink.line(spec.service, f"{kind} {'up to date' if artifact.cached else 'built'}: {artifact.reference}")
    return artifact


class Webservice:
    """A deployed service, found by name in the workspace (``Webservice("diabetes-svc")``).

    Attributes read the workspace record only; what needs the target (the live state, an endpoint) is
    observed once and cached until :meth:`refresh` (``state``, ``scoring_uri``) or read by a method that says
    so (:meth:`status`, :meth:`get_logs`).
    """

    def __init__(self, name: str, workspace: Workspace | PathLike[str] | str | None = None) -> None:
        self.workspace = as_workspace(workspace)
        self._store = ServiceStore(self.workspace)
        self._record: ServiceRecord = self._store.get(name)
        self._deleted = False
        self._last_status: Status | None = None
        self._target_obj: Target | None = None
        self._endpoint_cache: tuple[int, Endpoint | None] | None = None
        """(revision, endpoint) of the serving revision: resolving it may cost I/O (a port-forward)."""
        self._client: tuple[Endpoint, httpx.Client] | None = None
        self._sample_digest: bytes | None = None

    # -- listing ---------------------------------------------------------------------------------
    @classmethod
    def list(
        cls,
        workspace: Workspace | PathLike[str] | str | None = None,
        target: str | None = None,
        model_name: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> list[Webservice]:
        """Services in the workspace, filtered by target, model name and ``key``/``key=value`` tags."""
        ws = as_workspace(workspace)
        services = [cls(r.name, ws) for r in ServiceStore(ws).list() if target is None or r.target == target]
        if model_name:
            services = [s for s in services if any(m.partition(":")[0] == model_name for m in s.models)]
        for tag in tags or []:
            key, _, value = tag.partition("=")
            services = [s for s in services if key in s.tags and (not value or s.tags[key] == value)]
        return services

    # -- attributes (from the record) ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def target(self) -> str:
        """The nbdeploy target that runs the service (``process``, ``local``, ``aks``, ...)."""
        return self._record.target

    @property
    def compute_type(self) -> str:
        """v1's ``computeType`` spelling of the target (the deployment config's ``computeType``)."""
        return deployment_config_class(self._record.target).compute_type

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
    def models(self) -> builtins.list[str]:
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
    def inference_config_doc(self) -> dict[str, Any]:
        """The serving revision's inference config as stored (``entry_script``, ``source_directory``,
        ``environment``), without re-reading the entry script."""
        return dict(self._current()[1]["inference_config"])

    @property
    def environment(self) -> Environment | None:
        """The serving revision's environment."""
        doc = self._current()[1]["inference_config"].get("environment")
        return Environment.from_stored_dict(doc) if doc else None

    @property
    def artifact(self) -> Artifact | None:
        """What the serving revision runs from (an image, an isolated environment), when it was built."""
        doc = self._current()[1].get("artifact")
        return Artifact.from_dict(doc) if doc else None

    @property
    def image(self) -> str | None:
        """The serving revision's image tag (image targets), else None."""
        artifact = self.artifact
        return artifact.reference if artifact and artifact.kind == "docker-image" else None

    @property
    def image_id(self) -> str | None:
        """The serving revision's image id (``sha256:...``; image targets), else None."""
        artifact = self.artifact
        return artifact.id if artifact and artifact.kind == "docker-image" else None

    # -- observed (cached until refresh()) -------------------------------------------------------
    def endpoint(self) -> Endpoint | None:
        """How to reach the serving revision (cached per revision; None before it started)."""
        if self._endpoint_cache is None or self._endpoint_cache[0] != self.revision:
            handle, _ = self._current()
            self._endpoint_cache = (self.revision, self._target().endpoint(handle) if handle else None)
        return self._endpoint_cache[1]

    @property
    def scoring_uri(self) -> str | None:
        endpoint = self.endpoint()
        return endpoint.scoring_uri if endpoint else None

    @property
    def swagger_uri(self) -> str | None:
        endpoint = self.endpoint()
        return endpoint.swagger_uri if endpoint else None

    @property
    def port(self) -> int | None:
        endpoint = self.endpoint()
        return endpoint.port if endpoint else None

    @property
    def state(self) -> str:
        """The last observed state (observed now if never); :meth:`refresh` or :meth:`status` observe again."""
        return str((self._last_status or self.status()).state)

    @property
    def error(self) -> dict[str, str] | None:
        """``{"state", "reason", "evidence"}`` of the last observation when not Healthy, else None."""
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

    def refresh(self) -> Webservice:
        """Re-read the record (another process may have updated it) and observe the state again."""
        self._check_not_deleted()
        self._record = self._store.get(self.name)
        self._endpoint_cache = None
        self.status()
        return self

    def update_deployment_state(self) -> str:
        """v1 spelling: observe and return the state."""
        return str(self.refresh()._last_status.state)  # type: ignore[union-attr]

    def _target(self) -> Target:
        if self._target_obj is None:
            self._target_obj = get_target(self._record.target, self.workspace)
        return self._target_obj

    def _check_not_deleted(self) -> None:
        if self._deleted:
            raise ServiceNotFound(self.name, hint="It was deleted.")

    # -- waiting ---------------------------------------------------------------------------------
    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float | None = None, sink: ProgressSink | None = None
    ) -> Status:
        """Wait until the service is Healthy; raise :class:`DeploymentFailed` with state, reason and log tail otherwise."""
        sink = sink or make_sink(show_output, workspace=self.workspace)
        handle, _ = self._current()
        if handle:
            status = wait_until_settled(self._target(), handle, self.name, sink, timeout_sec or DEFAULT_TIMEOUT_S)
        else:
            status = self.status()
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
            self._store.finish_revision(
                self.name, self.revision, outcome, str(status.state), status.reason, status.evidence
            )

    # -- scoring ---------------------------------------------------------------------------------
    def run(self, input_data: str | bytes | dict[str, Any] | builtins.list[Any], timeout: float = 60.0) -> Any:
        """POST ``input_data`` to /score as given (dicts and lists are JSON-encoded) and return the parsed answer."""
        self._check_not_deleted()
        endpoint = self.endpoint()
        if endpoint is None:
            raise DeployError(self.name, self.state, "the service has not started yet")
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._record.keys:
            headers["Authorization"] = f"Bearer {self._record.keys[0]}"
        client = self._http(endpoint)
        try:
            try:
                response = client.post(endpoint.scoring_path, content=body, headers=headers, timeout=timeout)
            except (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError, httpx.WriteError) as exc:
                if isinstance(exc, (httpx.ReadError, httpx.WriteError)) and not _connection_reset(exc):
                    raise
                # a keep-alive connection closed, a listener handed over, or a connection reset while it waited
                # in the backlog of a listener that closed: a revision draining during an update. The
                # request was not answered; it is sent again once (scoring is idempotent)
                response = client.post(endpoint.scoring_path, content=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            self._endpoint_cache = None
            status = self.status()
            raise DeployError(
                self.name, str(status.state), f"cannot score: {exc}. {status.reason}".strip(), self.get_logs(20)
            ) from exc
        if response.status_code == 401 and self._record.keys:
            self._record = self._store.get(self.name)  # keys may have been regenerated elsewhere
        if response.status_code != 200:
            raise ScoringError(self.name, response.status_code, response.text, dict(response.headers))
        self._remember_sample(body)
        content_type = response.headers.get("content-type", "")
        if "json" in content_type:
            return response.json()
        return response.text if content_type.startswith("text/") else response.content

    def _remember_sample(self, body: str | bytes) -> None:
        """Keep the last body answered 200 (size-capped, owner-only) as the next update's smoke request."""
        data = body.encode() if isinstance(body, str) else bytes(body)
        if len(data) > SAMPLE_MAX_BYTES:
            return
        digest = hashlib.sha256(data).digest()
        if digest == self._sample_digest:
            return  # written already: a scoring loop costs one write
        try:
            write_private(self.workspace.service_dir(self.name) / SAMPLE_FILE, data)
        except OSError as exc:  # the folder is gone (deleted meanwhile) or read-only: scoring still worked
            log.debug("service %s: cannot record the request sample: %s", self.name, exc)
            return
        self._sample_digest = digest

    def _http(self, endpoint: Endpoint) -> httpx.Client:
        if self._client is None or self._client[0] != endpoint:
            if self._client is not None:
                self._client[1].close()
            self._client = (endpoint, endpoint.client())
        return self._client[1]

    # -- logs ------------------------------------------------------------------------------------
    def get_logs(self, num_lines: int = 5000, revision: int | None = None) -> str:
        """The last ``num_lines`` lines of the serving revision's log (or of ``revision``: its live log while
        it runs, else the evidence recorded when it failed)."""
        self._check_not_deleted()
        if revision is None or revision == self.revision:
            handle, _ = self._current()
            return self._target().logs(handle, num_lines) if handle else ""
        record = self._store.revision(self.name, revision)
        text = ""
        if record.handle:
            try:
                text = self._target().logs(record.handle, num_lines)
            except NbdeployError:
                text = ""
        if not text:
            text = record.evidence or ""
        lines = text.splitlines()
        return "\n".join(lines[-num_lines:]) if num_lines > 0 else ""

    def revisions(self) -> builtins.list[dict[str, Any]]:
        """The revision history: every deploy, update and reload, with its outcome and evidence."""
        return [
            {
                "revision": r.revision,
                "outcome": r.outcome,
                "state": r.state,
                "reason": r.reason,
                "created_time": r.created_time,
                "finished_time": r.finished_time,
                "models": r.spec.get("models"),
            }
            for r in self._store.revisions(self.name)
        ]

    # -- changing --------------------------------------------------------------------------------
    def update(
        self,
        models: Iterable[ModelRef] | ModelRef | None = None,
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        show_output: bool = False,
        timeout_sec: float | None = None,
        sink: ProgressSink | None = None,
    ) -> Webservice:
        """Build, then start a new revision beside the serving one and switch only when it is Healthy and
        answers a smoke request. Whatever is not given is kept from the serving revision.

        One lifecycle operation runs at a time per service (across processes): a second one waits for the
        first (``NBDEPLOY_LOCK_WAIT_S``, default 60 s), then raises :class:`~nbdeploy.errors.Conflict`."""
        return self._update("update", models, inference_config, deployment_config, show_output, timeout_sec, sink)

    def _update(
        self,
        operation: str,
        models: Iterable[ModelRef] | ModelRef | None,
        inference_config: InferenceConfig | None,
        deployment_config: DeploymentConfig | None,
        show_output: bool,
        timeout_sec: float | None,
        sink: ProgressSink | None,
    ) -> Webservice:
        self._check_not_deleted()
        sink = sink or make_sink(show_output, workspace=self.workspace)
        with self._lifecycle(operation, sink):
            _, spec_doc = self._current()
            model_objs = resolve_models(models if models is not None else spec_doc["models"], self.workspace)
            ic = inference_config or self.inference_config
            dc = deployment_config or self.deployment_config
            if dc.target != self._record.target:
                raise InvalidInput(
                    f"deployment_config is for target {dc.target!r} but {self.name!r} runs on {self._record.target!r}; delete and redeploy to move it."
                )
            return self._roll_out(model_objs, ic, dc, sink, timeout_sec or DEFAULT_TIMEOUT_S)

    def reload(self, show_output: bool = False, sink: ProgressSink | None = None) -> Webservice:
        """v1's ``reload()``: redeploy on the re-read entry script and source folder, without downtime.

        To re-read this object's state from the workspace instead, use :meth:`refresh`.
        """
        return self._update("reload", None, None, None, show_output, None, sink)

    @contextlib.contextmanager
    def _lifecycle(self, operation: str, sink: ProgressSink | None = None) -> Iterator[None]:
        """Hold the service's lifecycle lock, re-read the record (another process may have changed it) and
        reconcile: whatever a dead operation left running beside the current revision is stopped first."""
        progress = (
            (lambda line: sink.line(self.name, line)) if sink is not None else (lambda line: log.info("%s", line))
        )
        with service_lock(self.workspace, self.name, operation, progress=progress):
            self._record = self._store.get(self.name)  # raises ServiceNotFound if deleted meanwhile
            self._endpoint_cache = None
            self._retire_strays(progress)
            yield

    def reconcile(self, show_output: bool = False, sink: ProgressSink | None = None) -> Status:
        """Bring the service back to what its record says (``nbdeploy service reconcile NAME``); the state after.

        Under the lifecycle lock: revisions an operation that died left running are stopped (as before every
        lifecycle operation), then the target converges the serving revision where it is not yet in place
        (``Target.converge``: edge devices that were offline get their module).
        """
        self._check_not_deleted()
        sink = sink or make_sink(show_output, workspace=self.workspace)
        with self._lifecycle("reconcile", sink):
            handle, _ = self._current()
            if handle is not None:
                target = self._target()
                target.progress = lambda line: sink.line(self.name, line)
                converged = target.converge(handle)
                if converged != handle:
                    self._store.set_handle(self.name, self.revision, converged)
        status = self.status()
        self._record_outcome(status)
        sink.finish(self.name, str(status.state), status.reason, status.scoring_uri)
        return status

    def _retire_strays(self, progress: Any = None) -> dict[int, str]:
        """Stop revisions that run but are not current (left by an operation that died) and record revisions
        left "starting" as aborted. Runs (under the lock) before every lifecycle operation; returns
        ``{revision: what was done}``."""
        revisions = {r.revision: r for r in self._store.revisions(self.name)}
        current_revision = self._record.current_revision
        current = revisions.get(current_revision) if current_revision is not None else None
        others = {
            n: r.handle
            for n, r in revisions.items()
            if n != current_revision and r.outcome != ABORTED and (r.handle or r.outcome == STARTING)
        }
        if not others and current is None:
            return {}
        done = self._target().reconcile(self.name, current.handle if current else None, others)
        for number, what in done.items():
            record = revisions.get(number)
            if record is None:
                continue
            if record.outcome == STARTING:
                self._store.finish_revision(
                    self.name,
                    number,
                    ABORTED,
                    str(State.FAILED),
                    f"aborted: the operation that started it ended before finishing it ({what} when reconciled)",
                    record.evidence or "",
                )
            if what == "stopped":
                line = f"revision {number} ({record.outcome}) was still running beside revision {current_revision}; stopped it"
                log.warning("service %s: %s", self.name, line)
                if progress is not None:
                    progress(line)
        return done

    def _roll_out(
        self,
        models: builtins.list[Model],
        ic: InferenceConfig,
        dc: DeploymentConfig,
        sink: ProgressSink,
        timeout: float,
    ) -> Webservice:
        target = self._target()
        target.progress = lambda line: sink.line(self.name, line)
        old_revision = self.revision
        old_handle, _ = self._current()
        bundle = create_bundle(self.workspace, models, ic)
        keys = self._record.keys if dc.auth_enabled or self._record.keys else None
        if dc.auth_enabled and keys is None:
            keys = _keys_for(dc)
        latest = max((r.revision for r in self._store.revisions(self.name)), default=old_revision)
        spec = RevisionSpec(self.name, latest + 1, bundle, dc, ic.environment, keys)
        spec.artifact = build_revision(target, spec, sink)  # a failed build changes nothing
        spec.revision = self._store.add_revision(self.name, _revision_spec_doc(models, ic, dc, bundle, spec.artifact))
        sample = None if dc.smoke_input is not None else read_sample(self.workspace, self.name)
        new_handle = roll_out(
            target,
            spec,
            old_handle,
            old_revision,
            _StoreRecorder(self._store, self.name, old_revision, models),
            sink,
            timeout,
            smoke=functools.partial(smoke_check, sample=sample),
        )
        self._store.set_metadata(
            self.name,
            {**self._record.tags, **dc.tags},
            {**self._record.properties, **dc.properties},
            dc.description or self._record.description,
        )
        if keys != self._record.keys:
            self._store.set_keys(self.name, keys)
        self._record = self._store.get(self.name)
        self._endpoint_cache = None
        final = target.status(new_handle)
        self._last_status = final
        sink.finish(self.name, str(final.state), final.reason, final.scoring_uri)
        return self

    def delete(self, delete_image: bool = False) -> None:
        """Stop every revision and remove the service's records and files (and its images when asked).

        Deleting twice raises ServiceNotFound.
        """
        self._check_not_deleted()
        with self._lifecycle("delete"):
            self._delete_locked(delete_image)

    def _delete_locked(self, delete_image: bool) -> None:
        target = self._target()
        self._store.finish_revision(self.name, self.revision, DELETING, str(State.DELETING))  # observers see Deleting
        artifacts: dict[str, Artifact] = {}
        for rev in self._store.revisions(self.name):
            if rev.handle:
                target.stop(rev.handle)  # idempotent: replaced and failed revisions are stopped already
                if delete_image:
                    target.remove_copies(rev.handle)
            if rev.spec.get("artifact"):
                artifact = Artifact.from_dict(rev.spec["artifact"])
                artifacts[artifact.reference] = artifact
        if delete_image:
            for artifact in artifacts.values():
                if artifact.kind == "docker-image":
                    get_builder(artifact.kind, self.workspace).remove(artifact)
        self._store.delete(self.name)
        _remove_tree(self.workspace.service_dir(self.name))
        self._close_client()
        self._deleted = True

    def _close_client(self) -> None:
        if self._client is not None:
            self._client[1].close()
            self._client = None

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
        with self._lifecycle("regen-key"):
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
        """The service record (v1 keys plus nbdeploy's), with the state observed now."""
        status = self.status()
        _, spec = self._current()
        endpoint = self.endpoint()
        artifact = Artifact.from_dict(spec["artifact"]) if spec.get("artifact") else None
        image = artifact if artifact and artifact.kind == "docker-image" else None
        return {
            "name": self.name,
            "computeType": self.compute_type,
            "target": self.target,
            "state": str(status.state),
            "error": self.error,
            "scoringUri": endpoint.scoring_uri if endpoint else None,
            "swaggerUri": endpoint.swagger_uri if endpoint else None,
            "port": endpoint.port if endpoint else None,
            "models": spec.get("models"),
            "revision": self.revision,
            "tags": self.tags,
            "properties": self.properties,
            "description": self.description,
            "createdTime": self.created_time,
            "updatedTime": self.updated_time,
            "authEnabled": self.auth_enabled,
            "image": image.reference if image else None,
            "imageId": image.id if image else None,
            "artifact": artifact.to_dict() if artifact else None,
            "bundleDigest": spec.get("bundle", {}).get("digest"),
            "workspaceName": str(self.workspace.path),
        }

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, target={self.target!r}, revision={self.revision})"

    def _repr_html_(self) -> str:
        status = self._last_status or self.status()
        from html import escape

        color = {"Healthy": "#1a7f37", "Transitioning": "#9a6700"}.get(str(status.state), "#cf222e")
        reason = f"<br><small>{escape(status.reason)}</small>" if status.reason else ""
        return (
            f"<div><b>{escape(self.name)}</b> on <code>{escape(self.target)}</code> "
            f"<span style='color:{color}'>{status.state}</span>{reason}<br>"
            f"scoring: <code>{escape(status.scoring_uri or '-')}</code><br>models: {escape(', '.join(self.models))}</div>"
        )

    def __del__(self) -> None:
        try:
            self._close_client()
        except Exception:  # noqa: BLE001  # pragma: no cover - interpreter shutdown
            pass


class _StoreRecorder:
    """The rollout protocol's recorder over the service's revision history."""

    def __init__(self, store: ServiceStore, name: str, old_revision: int, models: list[Model]) -> None:
        self.store, self.name, self.old_revision, self.models = store, name, old_revision, models

    def started(self, revision: int, handle: Handle) -> None:
        self.store.set_handle(self.name, revision, handle)

    def failed(self, revision: int, state: str, reason: str, evidence: str = "") -> None:
        self.store.finish_revision(self.name, revision, FAILED, state, reason, evidence)

    def promoted(self, revision: int, handle: Handle) -> None:
        self.store.set_handle(self.name, revision, handle)
        self.store.switch(self.name, revision, self.old_revision, [m.id for m in self.models])
        self.store.finish_revision(self.name, revision, SERVING, str(State.HEALTHY))


# -- helpers ---------------------------------------------------------------------------------------


def _keys_for(config: DeploymentConfig) -> tuple[str, str] | None:
    if not config.auth_enabled:
        return None
    return (config.primary_key or secrets.token_urlsafe(24), config.secondary_key or secrets.token_urlsafe(24))


def _revision_spec_doc(
    models: list[Model], ic: InferenceConfig, dc: DeploymentConfig, bundle: Bundle, artifact: Artifact | None
) -> dict[str, Any]:
    return {
        "artifact": artifact.to_dict() if artifact else None,
        "models": [m.id for m in models],
        "inference_config": {
            "entry_script": str(ic.entry_script_path) if ic.source_directory is None else ic.entry_script,
            "source_directory": ic.source_directory,
            "environment": ic.environment.to_dict() if ic.environment is not None else None,
        },
        "deployment_config": dc.to_dict(),
        "bundle": {
            "digest": bundle.digest,
            "path": str(bundle.path),
            "entry_script": bundle.entry_script,
            "model_dir": bundle.model_dir,
        },
    }


def _inference_config_from_doc(doc: dict[str, Any]) -> InferenceConfig:
    env = Environment.from_stored_dict(doc["environment"]) if doc.get("environment") else None
    return InferenceConfig(doc["entry_script"], source_directory=doc.get("source_directory"), environment=env)


def _evidence(status: Status, service: Webservice) -> str:
    if status.evidence:
        return status.evidence
    try:
        return service.get_logs(40)
    except NbdeployError:  # pragma: no cover
        return ""


def read_sample(workspace: Workspace, name: str) -> bytes | None:
    """The last request body service ``name`` answered 200 to through :meth:`Webservice.run`, if any."""
    try:
        return (workspace.service_dir(name) / SAMPLE_FILE).read_bytes()
    except OSError:
        return None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path``, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _connection_reset(exc: BaseException) -> bool:
    """Whether a transport error is a reset/broken connection (the peer closed before answering)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionResetError, BrokenPipeError)):
            return True
        text = str(current).lower()
        if "connection reset" in text or "broken pipe" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
