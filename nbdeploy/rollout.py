"""The update protocol: a new revision starts beside the serving one and takes traffic only once proven.

1. ``Target.start(spec, previous=old)``: the new revision runs beside the serving one, without its traffic;
2. :func:`wait_until_settled`: poll until Healthy (or a final state, or the timeout);
3. :func:`smoke_check`: GET / and POST the smoke requests (:func:`smoke_requests`: the smoke input, else the
   swagger example and the last request the serving revision answered) to the revision alone
   (``Target.private_endpoint``);
4. ``Target.promote`` moves traffic, the recorder switches the record, ``Target.retire`` drains the old one;
5. any failure or interruption before the switch: ``Target.abort`` removes the new revision, the old one
   never stopped, the recorder notes why, and :class:`~nbdeploy.errors.UpdateFailed` carries the evidence.

The protocol knows nothing of the workspace: it talks to a :class:`~nbdeploy.targets.base.Target` and a
:class:`RevisionRecorder`, so it is unit-tested against ``nbdeploy.testing.FakeTarget`` in milliseconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from nbdeploy.errors import NbdeployError, UpdateFailed
from nbdeploy.targets.base import Handle, RevisionSpec, State, Status, Target

if TYPE_CHECKING:
    from nbdeploy.progress import ProgressSink

log = logging.getLogger(__name__)

SmokeCheck = Callable[[Target, Handle, RevisionSpec], str]
"""(target, new handle, spec) -> '' when the revision answers, else what went wrong."""


class RevisionRecorder(Protocol):
    """Where the protocol writes what happened to the new revision (the service's history)."""

    def started(self, revision: int, handle: Handle) -> None:
        """The revision runs (not serving yet)."""

    def failed(self, revision: int, state: str, reason: str, evidence: str = "") -> None:
        """The revision was not promoted; the old one keeps serving."""

    def promoted(self, revision: int, handle: Handle) -> None:
        """The revision serves: make it the service's current revision (atomically)."""


def wait_until_settled(
    target: Target,
    handle: Handle,
    name: str,
    sink: ProgressSink,
    timeout: float,
    poll: Callable[[float], None] = time.sleep,
) -> Status:
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
        poll(delay)
        delay = min(delay * 1.5, 0.5)


def smoke_requests(
    smoke_input: str | None, swagger_example: Any, sample: bytes | None
) -> list[tuple[str, str | bytes]]:
    """The smoke requests a new revision must answer 2xx before it takes traffic, as ``(what, body)``.

    An explicit ``smoke_input`` is the only one (the way to check a changed input format). Otherwise: the
    swagger example of an inference-schema script, and the last request the serving revision answered 200
    to through ``Webservice.run()`` / ``nbdeploy service run`` (a real client's input). None of them: [].
    """
    if smoke_input is not None:
        return [("the smoke input", smoke_input)]
    bodies: list[tuple[str, str | bytes]] = []
    if swagger_example:
        bodies.append(("the swagger example", json.dumps(swagger_example)))
    if sample is not None:
        bodies.append(("the last request the serving revision answered", sample))
    return bodies


def smoke_check(target: Target, handle: Handle, spec: RevisionSpec, sample: bytes | None = None) -> str:
    """'' when the revision answers GET / and the smoke requests on its private endpoint, else what went wrong.

    The requests are those of :func:`smoke_requests` (``sample``: a recorded request body); with none,
    only GET / is checked.
    """
    endpoint = target.private_endpoint(handle)
    if endpoint is None:
        return ""
    headers = {"Authorization": f"Bearer {spec.keys[0]}"} if spec.keys else {}
    try:
        with endpoint.client(timeout=30) as client:
            health = client.get("/")
            if health.status_code != 200:
                return f"GET / answered {health.status_code}"
            example = None
            if spec.config.smoke_input is None:
                swagger = client.get("/swagger.json", params={"version": "3"}, headers=headers)
                schemas = swagger.json().get("components", {}).get("schemas", {}) if swagger.status_code == 200 else {}
                example = schemas.get("ServiceInput", {}).get("example")
            for what, body in smoke_requests(spec.config.smoke_input, example, sample):
                answer = client.post(
                    endpoint.scoring_path, content=body, headers={**headers, "Content-Type": "application/json"}
                )
                if answer.status_code >= 300:
                    hint = (
                        (
                            "; to change the input format, give the new revision a smoke input "
                            "(deployment_config.smoke_input, --smoke-input)"
                        )
                        if what.startswith("the last")
                        else ""
                    )
                    return (
                        f"smoke request POST /score with {what} answered {answer.status_code}: "
                        f"{answer.text[:300]}{hint}"
                    )
    except (httpx.HTTPError, ValueError) as exc:
        return f"smoke request failed: {exc}"
    return ""


def roll_out(
    target: Target,
    spec: RevisionSpec,
    old_handle: Handle | None,
    old_revision: int,
    recorder: RevisionRecorder,
    sink: ProgressSink,
    timeout: float,
    smoke: SmokeCheck = smoke_check,
) -> Handle:
    """Run the protocol for ``spec`` (already built); return the new revision's serving handle.

    Raises :class:`UpdateFailed` when the new revision did not prove itself (the old one keeps serving), and
    re-raises interrupts after removing the new revision.
    """
    name, revision = spec.service, spec.revision
    sink.state(name, str(State.TRANSITIONING), f"revision {revision} starting beside revision {old_revision}")
    try:
        new_handle = target.start(spec, previous=old_handle)
    except BaseException as exc:
        recorder.failed(revision, str(State.FAILED), f"could not start: {_describe(exc)}")
        if isinstance(exc, NbdeployError):
            raise UpdateFailed(
                name,
                str(State.FAILED),
                f"revision {revision} could not start: {exc}; revision {old_revision} keeps serving",
            ) from exc
        raise
    recorder.started(revision, new_handle)
    status: Status | None = None
    try:
        status = wait_until_settled(target, new_handle, name, sink, timeout)
        problem = "" if status.state == State.HEALTHY else f"{status.state}: {status.reason}"
        if not problem:
            problem = smoke(target, new_handle, spec)
        if not problem:
            new_handle = target.promote(new_handle, old_handle)
    except BaseException as exc:  # interrupted, or the promotion failed: the old revision keeps serving
        _abort(target, new_handle, old_handle)
        recorder.failed(revision, str(State.FAILED), f"update stopped: {_describe(exc)}")
        if isinstance(exc, NbdeployError) and not isinstance(exc, UpdateFailed):
            raise UpdateFailed(
                name,
                str(State.FAILED),
                f"revision {revision} was not promoted ({exc}); revision {old_revision} keeps serving",
            ) from exc
        raise
    if problem:
        evidence = status.evidence if status.evidence else _logs(target, new_handle)
        _abort(target, new_handle, old_handle)
        failed_state = status.state if status.state != State.HEALTHY else State.UNHEALTHY
        recorder.failed(revision, str(failed_state), problem, evidence)
        sink.finish(name, str(State.FAILED), f"update rolled back, revision {old_revision} keeps serving: {problem}")
        raise UpdateFailed(
            name,
            str(failed_state),
            f"revision {revision} did not become Healthy ({problem}); revision {old_revision} keeps serving",
            evidence,
        )
    recorder.promoted(revision, new_handle)
    if old_handle is not None:
        try:
            target.retire(old_handle, new_handle)
        except Exception as exc:  # noqa: BLE001 - the new revision serves: report, do not undo
            log.warning(
                "service %s: revision %d serves, but retiring revision %d failed: %s", name, revision, old_revision, exc
            )
            sink.line(name, f"warning: revision {old_revision} could not be stopped: {exc}")
    return new_handle


def _abort(target: Target, new: Handle, old: Handle | None) -> None:
    """Remove the new revision; a failure here is logged, never hides the reason the update failed."""
    try:
        target.abort(new, old)
    except Exception as exc:  # noqa: BLE001
        log.error("could not remove the failed revision %s: %s", new, exc)


def _logs(target: Target, handle: Handle) -> str:
    try:
        return target.logs(handle, 60)
    except Exception:  # noqa: BLE001 - evidence is best effort
        return ""


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, NbdeployError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
