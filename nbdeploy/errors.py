"""The one exception tree of nbdeploy.

Catch :class:`NbdeployError` to catch everything nbdeploy raises on purpose::

    NbdeployError
    ├── InvalidInput                 bad arguments or files from the user (400)
    │   ├── InvalidName              a name breaks the naming rule
    │   └── InvalidSpec              a spec/config key or value is wrong (names key and allowed values)
    ├── NotFound                     a named thing does not exist (404), with close matches
    │   ├── ModelNotFound
    │   ├── ServiceNotFound
    │   └── EnvironmentNotFound
    ├── Conflict                     the operation clashes with the current state (409)
    │   ├── AlreadyExists
    │   └── ModelInUse
    ├── WorkspaceError               no workspace, or a folder that is not one
    ├── EngineUnavailable            Docker / Kubernetes / ... cannot be reached; says how to fix it
    ├── BuildError                   an image or environment build failed; carries the build log
    ├── DeployError                  a deployment did not become Healthy; carries state, reason, logs
    │   ├── DeploymentFailed
    │   └── UpdateFailed             the old revision keeps serving
    ├── ScoringError                 the service answered a scoring call with an error
    └── TargetNotAvailable           the target is not built (yet) or its extra is not installed

Every class has ``status_code`` so the REST handlers map errors to HTTP in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class NbdeployError(Exception):
    """Root of every error nbdeploy raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(NbdeployError):
    """The user gave an argument, file or value that cannot be used."""

    status_code = 400


class InvalidName(InvalidInput):
    """A name does not follow its rule."""

    def __init__(self, kind: str, name: str, rule: str) -> None:
        super().__init__(f"Invalid {kind} name {name!r}: {rule}")
        self.kind, self.name, self.rule = kind, name, rule


class InvalidSpec(InvalidInput):
    """A key or value in a spec or config file is wrong."""

    def __init__(self, key: str, problem: str, allowed: Iterable[str] | None = None, source: str | None = None) -> None:
        where = f" in {source}" if source else ""
        msg = f"{key}{where}: {problem}"
        allowed_list = sorted(allowed) if allowed is not None else None
        if allowed_list:
            msg += f" (allowed: {', '.join(allowed_list)})"
        super().__init__(msg)
        self.key, self.problem, self.allowed, self.source = key, problem, allowed_list, source


class NotFound(NbdeployError):
    """A named thing does not exist."""

    status_code = 404
    kind = "object"

    def __init__(self, name: str, candidates: Sequence[str] = (), hint: str = "") -> None:
        self.name = name
        self.close_matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
        msg = f"No {self.kind} named {name!r}."
        if self.close_matches:
            msg += " Did you mean " + " or ".join(repr(m) for m in self.close_matches) + "?"
        if hint:
            msg += " " + hint
        super().__init__(msg)


class ModelNotFound(NotFound):
    kind = "model"


class ServiceNotFound(NotFound):
    kind = "service"


class EnvironmentNotFound(NotFound):
    kind = "environment"


class Conflict(NbdeployError):
    """The operation clashes with the current state."""

    status_code = 409


class AlreadyExists(Conflict):
    """Something with that name exists already."""


class ModelInUse(Conflict):
    """A model version is used by deployments and cannot be deleted without force."""

    def __init__(self, model_id: str, services: Sequence[str]) -> None:
        super().__init__(
            f"Model {model_id} is used by service(s) {', '.join(services)}; "
            "delete those services first or pass force=True (--force)."
        )
        self.model_id, self.services = model_id, list(services)


class WorkspaceError(NbdeployError):
    """No usable workspace."""

    status_code = 400


class EngineUnavailable(NbdeployError):
    """An engine (Docker, Kubernetes, ...) cannot be reached."""

    status_code = 503

    def __init__(self, engine: str, reason: str, hint: str = "") -> None:
        super().__init__(f"{engine} is not reachable: {reason}." + (f" {hint}" if hint else ""))
        self.engine, self.reason, self.hint = engine, reason, hint


class BuildError(NbdeployError):
    """Building an image or environment failed."""

    def __init__(self, reason: str, build_log: Sequence[str] = (), step: str | None = None) -> None:
        tail = "\n".join(list(build_log)[-20:])
        msg = reason + (f"\nFailing step: {step}" if step else "") + (f"\nBuild log (tail):\n{tail}" if tail else "")
        super().__init__(msg)
        self.reason, self.build_log, self.step = reason, list(build_log), step


class DeployError(NbdeployError):
    """A deployment did not reach Healthy."""

    def __init__(self, service: str, state: str, reason: str, logs: str = "") -> None:
        msg = f"Service {service!r} is {state}: {reason}"
        if logs:
            msg += "\nLog tail:\n" + logs
        super().__init__(msg)
        self.service, self.state, self.reason, self.logs = service, state, reason, logs


class DeploymentFailed(DeployError):
    """A deployment ended in a state other than Healthy."""


class UpdateFailed(DeployError):
    """An update did not become Healthy; the previous revision keeps serving.

    ``state`` is the new revision's state; the service itself stays as it was (usually Healthy).
    """

    status_code = 409  # the request conflicts with what the new revision did; nothing serving changed

    def __init__(self, service: str, state: str, reason: str, logs: str = "") -> None:
        super().__init__(service, state, reason, logs)
        self.message = f"Update of service {service!r} failed ({state}): {reason}" + (
            "\nLog tail of the new revision:\n" + logs if logs else ""
        )
        self.args = (self.message,)


class ScoringError(NbdeployError):
    """A scoring call was answered with an error status."""

    status_code = 502

    def __init__(self, service: str, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            f"Service {service!r} answered {status}: {body[:2000]}\n"
            f"More information: nbdeploy service logs {service}  (or service.get_logs())"
        )
        self.service, self.status, self.body, self.headers = service, status, body, dict(headers or {})


class TargetNotAvailable(NbdeployError):
    """The deployment target does not exist or cannot be used in this installation."""

    status_code = 400


__all__ = [name for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, NbdeployError)]
