"""A service's state from what the cluster reports. Pure: plain dicts (API objects as JSON) in, verdict out.

:func:`classify` reads the Deployment, its ReplicaSets, the service's pods and their events:

* Failed: a current pod is in CrashLoopBackOff, exited with code 3 (init() failed), was OOM-killed, cannot
  get its image, or cannot create its container; or the rollout passed its progress deadline;
* Unschedulable: a current pod stays Pending with PodScheduled=False (the scheduler's message);
* Unhealthy: the rollout had completed but replicas are not ready, or containers restart (liveness);
* Transitioning: the rollout is under way;
* rollout complete: the target then sends a smoke request to say Healthy or Unhealthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbdeploy.targets.base import State

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable")
CONTAINER_ERRORS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
INIT_FAILED_EXIT_CODE = 3


@dataclass
class Verdict:
    state: State
    reason: str = ""
    rollout_complete: bool = False
    """Every desired replica runs the current template and is available: smoke it to say Healthy."""
    evidence_pod: str | None = None
    """The pod whose log proves the reason."""
    previous_log: bool = False
    """Read the previous (crashed) container's log of ``evidence_pod``."""
    events: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            return default
        obj = obj[key]
    return obj


def current_replica_set(deployment: dict[str, Any], replica_sets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current revision."""
    revision = _get(deployment, "metadata", "annotations", REVISION_ANNOTATION)
    uid = _get(deployment, "metadata", "uid")
    for rs in replica_sets:
        owners = _get(rs, "metadata", "ownerReferences", default=[])
        if uid and not any(o.get("uid") == uid for o in owners):
            continue
        if revision is not None and _get(rs, "metadata", "annotations", REVISION_ANNOTATION) == revision:
            return rs
    return None


def event_lines(events: list[dict[str, Any]]) -> list[str]:
    """``Type Reason Kind/name: message (xN)``, oldest first."""

    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or _get(e, "metadata", "creationTimestamp") or "")

    lines = []
    for e in sorted(events, key=when):
        obj = e.get("involvedObject") or {}
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        lines.append(
            f"{when(e)} {e.get('type', '')} {e.get('reason', '')} {obj.get('kind', '')}/{obj.get('name', '')}: "
            f"{(e.get('message') or '').strip()}{count}"
        )
    return lines


def _pod_events(events: list[dict[str, Any]], pod: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in events if _get(e, "involvedObject", "name") == pod and e.get("reason") == reason]


def _container_problem(pod: dict[str, Any]) -> Verdict | None:
    name = _get(pod, "metadata", "name", default="?")
    for cs in _get(pod, "status", "containerStatuses", default=[]):
        waiting = _get(cs, "state", "waiting", default={})
        terminated = _get(cs, "state", "terminated", default={})
        last = _get(cs, "lastState", "terminated", default={})
        restarts = cs.get("restartCount", 0)
        wreason, wmsg = waiting.get("reason", ""), (waiting.get("message") or "").strip()
        if wreason in IMAGE_ERRORS:
            return Verdict(
                State.FAILED,
                f"pod {name} cannot get its image ({wreason}): {wmsg or cs.get('image', '')}",
                details={"pod": name, "image": cs.get("image")},
            )
        if wreason in CONTAINER_ERRORS:
            return Verdict(
                State.FAILED, f"pod {name} cannot start its container ({wreason}): {wmsg}", details={"pod": name}
            )
        for done, previous in ((terminated, False), (last, True)):
            code = done.get("exitCode")
            if done.get("reason") == "OOMKilled":
                return Verdict(
                    State.FAILED,
                    f"pod {name} was killed for memory (OOMKilled; raise memory_gb_limit)",
                    evidence_pod=name,
                    previous_log=previous,
                    details={"pod": name, "exit_code": code},
                )
            if code == INIT_FAILED_EXIT_CODE:
                return Verdict(
                    State.FAILED,
                    f"init() failed in pod {name} (exit code 3, restarted {restarts} times)",
                    evidence_pod=name,
                    previous_log=previous,
                    details={"pod": name, "exit_code": code},
                )
        if wreason == "CrashLoopBackOff":
            code = last.get("exitCode")
            return Verdict(
                State.FAILED,
                f"pod {name} is in CrashLoopBackOff (restarted {restarts} times, last exit code {code})",
                evidence_pod=name,
                previous_log=True,
                details={"pod": name, "exit_code": code},
            )
    return None


def _unschedulable(pod: dict[str, Any], events: list[dict[str, Any]]) -> Verdict | None:
    if _get(pod, "status", "phase") != "Pending":
        return None
    name = _get(pod, "metadata", "name", default="?")
    for cond in _get(pod, "status", "conditions", default=[]):
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            message = (cond.get("message") or "").strip()
            if not message:
                found = _pod_events(events, name, "FailedScheduling")
                message = (found[-1].get("message") or "").strip() if found else "no node fits the pod"
            return Verdict(State.UNSCHEDULABLE, message, details={"pod": name})
    return None


def lost_readiness(pod: dict[str, Any]) -> bool:
    """A running pod that was ready and is not any more: its Ready=False came after its container started
    (a pod still in init() has had Ready=False since before its container started)."""
    if _get(pod, "status", "phase") != "Running":
        return False
    ready = next((c for c in _get(pod, "status", "conditions", default=[]) if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") == "True":
        return False
    started = [_get(cs, "state", "running", "startedAt") for cs in _get(pod, "status", "containerStatuses", default=[])]
    started = [s for s in started if s]
    changed = ready.get("lastTransitionTime")
    return bool(started and changed and changed > max(started))  # RFC 3339 UTC strings sort as times


def ready_endpoints(endpoints: dict[str, Any] | None) -> int:
    """How many ready addresses the Service's Endpoints object lists."""
    return sum(len(subset.get("addresses") or []) for subset in (endpoints or {}).get("subsets") or [])


def classify(
    deployment: dict[str, Any] | None,
    replica_sets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    events: list[dict[str, Any]],
    min_generation: int = 0,
    endpoints: int | None = None,
) -> Verdict:
    """The state of a service's Deployment; ``min_generation`` is the generation our last apply produced,
    ``endpoints`` the number of ready addresses behind the Service (None: not checked)."""
    if deployment is None:
        return Verdict(State.FAILED, "the Deployment is gone (deleted outside nbdeploy?)")
    name = _get(deployment, "metadata", "name", default="?")
    generation = _get(deployment, "metadata", "generation", default=0)
    observed = _get(deployment, "status", "observedGeneration", default=0)
    if observed < max(generation, min_generation):
        return Verdict(State.TRANSITIONING, "the Deployment controller has not seen the change yet")
    desired = _get(deployment, "spec", "replicas", default=1)
    status = _get(deployment, "status", default={})
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total, ready = status.get("replicas", 0), status.get("readyReplicas", 0)
    details = {"desired": desired, "updated": updated, "available": available, "ready": ready, "total": total}

    rs = current_replica_set(deployment, replica_sets)
    current_hash = _get(rs, "metadata", "labels", HASH_LABEL) if rs else None
    live = [p for p in pods if not _get(p, "metadata", "deletionTimestamp")]
    current = [p for p in live if current_hash is None or _get(p, "metadata", "labels", HASH_LABEL) == current_hash]
    details["pods"] = sorted(_get(p, "metadata", "name", default="?") for p in current)

    for pod in current:
        verdict = _container_problem(pod)
        if verdict is not None:
            verdict.details = {**details, **verdict.details}
            return verdict
    for pod in current:
        verdict = _unschedulable(pod, events)
        if verdict is not None:
            verdict.details = {**details, **verdict.details}
            return verdict
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            seconds = _get(deployment, "spec", "progressDeadlineSeconds")
            first_pod = details["pods"][0] if details["pods"] else None
            return Verdict(
                State.FAILED,
                f"the rollout of Deployment {name} passed its deadline of {seconds} s: {cond.get('message', '')}",
                evidence_pod=first_pod,
                details=details,
            )
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return Verdict(
                State.FAILED, f"Deployment {name} cannot create pods: {cond.get('message', '')}", details=details
            )

    if updated == desired and total == desired and available == desired and desired > 0:
        if endpoints is not None and endpoints < desired:
            return Verdict(
                State.TRANSITIONING, f"the Service lists {endpoints}/{desired} ready endpoints", details=details
            )
        return Verdict(State.TRANSITIONING, "", rollout_complete=True, details=details)

    restarted = [
        p
        for p in current
        if any(cs.get("restartCount", 0) for cs in _get(p, "status", "containerStatuses", default=[]))
    ]
    not_ready = [p for p in current if lost_readiness(p)]
    if restarted or not_ready:
        pod = (restarted or not_ready)[0]
        pod_name = _get(pod, "metadata", "name", default="?")
        probe_events = _pod_events(events, pod_name, "Unhealthy")
        why = (probe_events[-1].get("message") or "").strip() if probe_events else ""
        if pod in restarted:
            cs = _get(pod, "status", "containerStatuses", default=[{}])[0]
            last = _get(cs, "lastState", "terminated", default={})
            reason = (
                f"pod {pod_name} restarted {cs.get('restartCount', 0)} times (last exit code {last.get('exitCode')}"
                f"{', ' + why if why else ''})"
            )
            return Verdict(State.UNHEALTHY, reason, evidence_pod=pod_name, previous_log=True, details=details)
        reason = f"{ready}/{desired} replicas ready; pod {pod_name} runs but is not ready" + (f": {why}" if why else "")
        return Verdict(State.UNHEALTHY, reason, evidence_pod=pod_name, details=details)
    progress = f"rollout: {updated}/{desired} updated, {available}/{desired} available"
    if total > desired:
        progress += f", {total - updated} old replica(s) terminating"
    return Verdict(State.TRANSITIONING, progress, details=details)
