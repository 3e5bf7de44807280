"""What the side panel's REST calls answer, built from nbdeploy's public Python API (no tornado here).

Every function takes a :class:`~nbdeploy.workspace.Workspace` and returns JSON-ready data, so the handlers
stay thin and the benchmark can time the same calls without a server.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import nbdeploy
from nbdeploy.errors import InvalidInput, NbdeployError, ScoringError
from nbdeploy.registry import Model
from nbdeploy.registry.model import human_size
from nbdeploy.registry.usage import usage
from nbdeploy.service import Webservice
from nbdeploy.targets.registry import DEFAULT_TARGET
from nbdeploy.workspace import Workspace

#: Bumped when a route or a document changes shape; the lab extension names the one it speaks.
API_VERSION = 1


def version_doc() -> dict[str, Any]:
    """The Python package's version and the REST API version, for the lab extension's handshake."""
    return {"version": nbdeploy.__version__, "api": API_VERSION}


def error_doc(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The one mapping from an exception to (HTTP status, JSON body)."""
    if isinstance(exc, NbdeployError):
        public = next(c for c in type(exc).__mro__ if c.__module__ == "nbdeploy.errors")  # names from the one tree
        doc: dict[str, Any] = {"message": str(exc), "type": public.__name__}
        for key in ("state", "reason", "logs", "body", "status", "close_matches", "exception"):
            value = getattr(exc, key, None)
            if value not in (None, "", []):
                doc["scoringStatus" if key == "status" else ("closeMatches" if key == "close_matches" else key)] = value
        return exc.status_code, doc
    return 500, {"message": f"{type(exc).__name__}: {exc}", "type": "InternalError"}


def target_names() -> list[str]:
    """Deployment targets from the target registry (the one place the panel's server asks for them)."""
    from nbdeploy.targets.registry import target_names as registered

    return list(registered())


def environment_names(ws: Workspace) -> list[str]:
    """Environments saved in the workspace (``%%environment NAME``), for the deploy form."""
    from nbdeploy.specs.environment_store import environment_names as saved

    return saved(ws)


# -- the registry ----------------------------------------------------------------------------------


def version_summary(model: Model, used_by: list[str]) -> dict[str, Any]:
    """One model version as the registry tree shows it."""
    return {
        "id": model.id,
        "name": model.name,
        "version": model.version,
        "tags": model.tags,
        "description": model.description,
        "size": model.size,
        "sizeText": human_size(model.size),
        "framework": model.model_framework,
        "createdTime": model.created_time.isoformat(),
        "createdBy": model.created_by,
        "usedBy": used_by,
    }


def registry_fingerprint(ws: Workspace) -> tuple[Any, ...]:
    """Cheap (one query): moves when a version is registered or deleted, a tag changes or a service starts or
    stops using a version."""
    if not ws.exists():
        return ()
    row = (
        ws.db(create=False)
        .execute(
            "SELECT (SELECT COUNT(*) FROM models), (SELECT COALESCE(MAX(id), 0) FROM models),"
            " (SELECT group_concat(model || ':' || key || '=' || value, ';') FROM model_tags),"
            " (SELECT group_concat(model_id || '>' || service, ';') FROM model_usage)"
        )
        .fetchone()
    )
    return tuple(row)


_MODELS_CACHE: dict[str, tuple[tuple[Any, ...], str]] = {}
_MODELS_CACHE_LOCK = threading.Lock()


def models_json(ws: Workspace) -> str:
    """``{"models": models_doc(ws)}`` as JSON, rebuilt only when :func:`registry_fingerprint` moved."""
    key, fingerprint = str(ws.path), registry_fingerprint(ws)
    with _MODELS_CACHE_LOCK:
        cached = _MODELS_CACHE.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    text = json.dumps({"models": models_doc(ws)}, default=str)
    with _MODELS_CACHE_LOCK:
        _MODELS_CACHE[key] = (fingerprint, text)
    return text


def models_doc(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    """``[{name, latest, versions: [...newest first]}]`` for every model (or one)."""
    used = usage(ws)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for model in Model.list(name=name, workspace=ws):
        grouped.setdefault(model.name, []).append(version_summary(model, used.get(model.id, [])))
    if name is not None and name not in grouped:
        Model.get(name, workspace=ws)  # raises ModelNotFound with close matches
    return [
        {"name": n, "latest": versions[-1]["version"], "versions": versions[::-1]}
        for n, versions in sorted(grouped.items())
    ]


# -- services --------------------------------------------------------------------------------------


def service_fingerprint(svc: Webservice, revisions: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What changes in the records when a service's state, revision or metadata changes."""
    return (
        svc.revision,
        svc.updated_time,
        svc.description,
        tuple(sorted(svc.tags.items())),
        tuple((r["revision"], r["outcome"], r["state"], r["finished_time"]) for r in revisions),
    )


def service_summary(
    svc: Webservice, revisions: list[dict[str, Any]] | None = None, observe: bool = True
) -> dict[str, Any]:
    """A service as the panel lists it: records plus (with ``observe``) the state observed now.

    ``inFlight`` is a revision starting beside the serving one (an update); ``failedUpdate`` is the newest
    revision after the serving one that failed (the serving one kept serving).
    """
    revisions = svc.revisions() if revisions is None else revisions
    current = svc.revision
    serving = next((r for r in revisions if r["revision"] == current), None)
    later = [r for r in revisions if r["revision"] > current]
    in_flight = next((r for r in reversed(later) if r["outcome"] == "starting"), None)
    failed = next((r for r in reversed(later) if r["outcome"] == "failed"), None)
    doc: dict[str, Any] = {
        "name": svc.name,
        "target": svc.target,
        "revision": current,
        "models": list((serving or {}).get("models") or []),
        "description": svc.description,
        "tags": svc.tags,
        "authEnabled": svc.auth_enabled,
        "createdTime": svc.created_time,
        "updatedTime": svc.updated_time,
        "inFlight": _revision_brief(in_flight),
        "failedUpdate": _revision_brief(failed) if failed and not in_flight else None,
        "state": (serving or {}).get("state") or "Transitioning",
        "reason": (serving or {}).get("reason") or "",
        "scoringUri": None,
        "observed": False,
    }
    if observe:
        doc.update(observe_state(svc))
    return doc


def observe_state(svc: Webservice) -> dict[str, Any]:
    """``{state, reason, scoringUri, observed}`` from the target now; an engine that cannot answer is ``Unknown``."""
    try:
        status = svc.status()
        uri = status.scoring_uri or svc.scoring_uri
    except NbdeployError as exc:
        return {"state": "Unknown", "reason": str(exc).splitlines()[0], "observed": True}
    except Exception as exc:  # noqa: BLE001 - an engine's own error (a broken Docker socket, ...): shown, never fatal
        return {"state": "Unknown", "reason": f"{type(exc).__name__}: {exc}", "observed": True}
    return {"state": str(status.state), "reason": status.reason, "scoringUri": uri, "observed": True}


def _revision_brief(rev: dict[str, Any] | None) -> dict[str, Any] | None:
    if rev is None:
        return None
    return {
        "revision": rev["revision"],
        "outcome": rev["outcome"],
        "state": rev["state"],
        "reason": rev["reason"],
        "createdTime": rev["created_time"],
        "finishedTime": rev["finished_time"],
        "models": rev["models"],
    }


def services_doc(ws: Workspace, observe: bool = True) -> list[dict[str, Any]]:
    """Every service of the workspace, summarized."""
    return [service_summary(svc, observe=observe) for svc in Webservice.list(ws)]


def service_detail(ws: Workspace, name: str) -> dict[str, Any]:
    """The service view: the summary, v1's serialize() keys and the revision history (newest first)."""
    svc = Webservice(name, ws)
    revisions = svc.revisions()
    doc = service_summary(svc, revisions)
    doc["serialized"] = svc.serialize()
    doc["revisions"] = [_revision_brief(r) for r in reversed(revisions)]
    return doc


def service_logs(ws: Workspace, name: str, lines: int) -> dict[str, Any]:
    if not 1 <= lines <= 100_000:
        raise InvalidInput(f"lines must be between 1 and 100000, got {lines}")
    return {"name": name, "logs": Webservice(name, ws).get_logs(lines)}


class ScoringFailed(ScoringError):
    """A scoring error with the exception the entry script raised, read from the service's log."""

    def __init__(self, error: ScoringError, exception: str, log_tail: str) -> None:
        NbdeployError.__init__(self, f"Service {error.service!r} answered {error.status}: {exception}")
        self.service, self.status, self.body, self.headers = error.service, error.status, error.body, error.headers
        self.exception, self.logs = exception, log_tail


def last_exception(logs: str) -> str | None:
    """The ``Type: message`` line of the last Python traceback in a log, or None."""
    lines = logs.splitlines()
    start = max((i for i, line in enumerate(lines) if "Traceback (most recent call last):" in line), default=None)
    if start is None:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip()) + lines[start].lstrip().find("Traceback")
    for line in lines[start + 1 :]:
        body = line[indent:] if len(line) > indent else line.strip()
        if body and not body[0].isspace() and re.match(r"^[A-Za-z_][\w.]*(: |$)", body):
            return body.strip()
    return None


def score(ws: Workspace, name: str, payload: str) -> dict[str, Any]:
    """POST ``payload`` (the text as typed) to the service; its answer.

    A 500 from the entry script's ``run()`` raises :class:`ScoringFailed` naming the exception it raised
    (from the service's log: the scoring server does not put it in the answer, like v1's).
    """
    svc = Webservice(name, ws)
    try:
        answer = svc.run(payload)
    except ScoringError as exc:
        if exc.status < 500:
            raise
        tail = svc.get_logs(200)
        exception = last_exception(tail)
        if exception is None:
            raise
        raise ScoringFailed(exc, exception, "\n".join(tail.splitlines()[-40:])) from None
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return {"name": name, "result": answer}


def update(ws: Workspace, name: str, models: list[str] | None = None) -> dict[str, Any]:
    """A new revision (with ``models`` when given, else the same ones: a reload of the entry script)."""
    svc = Webservice(name, ws)
    if models:
        svc.update(models=models)
    else:
        svc.reload()
    return service_summary(Webservice(name, ws))


def rollback(ws: Workspace, name: str, revision: int) -> dict[str, Any]:
    """Update to an earlier revision's models, entry script path, environment and deployment config."""
    from nbdeploy.service_records import ServiceStore
    from nbdeploy.specs import Environment, InferenceConfig, deployment_config_from_dict

    svc = Webservice(name, ws)
    known = {r["revision"] for r in svc.revisions()}
    if revision not in known:
        raise InvalidInput(
            f"Service {name!r} has no revision {revision} (it has {', '.join(map(str, sorted(known)))})."
        )
    if revision == svc.revision:
        raise InvalidInput(f"Revision {revision} of {name!r} is the one serving; pick an earlier one.")
    spec = ServiceStore(ws).revision(name, revision).spec
    ic_doc = spec["inference_config"]
    env = Environment.from_stored_dict(ic_doc["environment"]) if ic_doc.get("environment") else None
    ic = InferenceConfig(ic_doc["entry_script"], source_directory=ic_doc.get("source_directory"), environment=env)
    svc.update(
        models=spec["models"],
        inference_config=ic,
        deployment_config=deployment_config_from_dict(spec["deployment_config"]),
    )
    return service_summary(Webservice(name, ws))


def delete(ws: Workspace, name: str) -> dict[str, Any]:
    Webservice(name, ws).delete()
    return {"name": name, "deleted": True}


def deploy(ws: Workspace, root_dir: Path, body: dict[str, Any]) -> Webservice:
    """Start a service from a deploy form: ``{name, models, entryScript, sourceDirectory?, environment?, target?, overwrite?, auth?}``.

    Relative paths are resolved against the Jupyter server's root folder. Returns the started service
    (Transitioning); the caller waits for it.
    """
    from nbdeploy.specs import InferenceConfig, deployment_config_class
    from nbdeploy.specs.environment_store import load_environment

    name = _text(body, "name")
    models = body.get("models")
    if isinstance(models, str):
        models = [models]
    if not models or not all(isinstance(m, str) and m for m in models):
        raise InvalidInput('models: give one or more "name:version" model ids')
    entry = Path(_text(body, "entryScript")).expanduser()
    entry = entry if entry.is_absolute() else root_dir / entry
    source_dir = body.get("sourceDirectory") or None
    if source_dir:
        source = Path(source_dir).expanduser()
        source = source if source.is_absolute() else root_dir / source
        source_dir, entry_arg = (
            str(source),
            str(entry.relative_to(source)) if entry.is_relative_to(source) else str(entry),
        )
    else:
        if not entry.is_file():
            raise InvalidInput(
                f"entryScript: {entry} does not exist; give the path of a score.py (relative to {root_dir})."
            )
        entry_arg = str(entry)
    environment = load_environment(ws, body["environment"]) if body.get("environment") else None
    target = body.get("target") or DEFAULT_TARGET
    if target not in target_names():
        raise InvalidInput(f"target: {target!r} is not a target (known: {', '.join(target_names())})")
    options: dict[str, Any] = {}
    if body.get("auth") is not None:
        options["auth_enabled"] = bool(body["auth"])
    config = deployment_config_class(target)(**options)
    ic = InferenceConfig(entry_arg, source_directory=source_dir, environment=environment)
    return nbdeploy.deploy(name, models, ic, config, overwrite=bool(body.get("overwrite")), workspace=ws)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key}: required (a non-empty string)")
    return value.strip()


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; a clear InvalidInput otherwise."""
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the request body must be a JSON object")
    return doc
