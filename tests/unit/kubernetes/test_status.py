"""classify: a service's state from the Deployment, ReplicaSets, pods and events (API objects as dicts)."""

from __future__ import annotations

from typing import Any

from nbdeploy.targets.base import State
from nbdeploy.targets.kubernetes.status import classify, event_lines, lost_readiness, ready_endpoints

UID = "dep-uid"


def deployment(desired: int = 2, updated: int = 2, available: int = 2, total: int = 2, generation: int = 3,
               observed: int = 3, revision: str = "2", conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "svc", "uid": UID, "generation": generation,
                     "annotations": {"deployment.kubernetes.io/revision": revision}},
        "spec": {"replicas": desired, "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                   "readyReplicas": available, "replicas": total, "conditions": conditions or []},
    }


def rs(hash_: str, revision: str) -> dict[str, Any]:
    return {"metadata": {"name": f"svc-{hash_}", "labels": {"pod-template-hash": hash_}, "ownerReferences": [{"uid": UID}],
                         "annotations": {"deployment.kubernetes.io/revision": revision}}}


REPLICA_SETS = [rs("old", "1"), rs("new", "2")]


def pod(name: str, hash_: str = "new", phase: str = "Running", ready: bool = True, **container: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}, **container}
    return {
        "metadata": {"name": name, "labels": {"pod-template-hash": hash_}},
        "status": {"phase": phase, "containerStatuses": [status] if phase != "Pending" else [],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": "2026-01-01T00:00:01Z"}]},
    }


def test_complete_rollout_asks_for_a_smoke_request() -> None:
    verdict = classify(deployment(), REPLICA_SETS, [pod("a"), pod("b")], [])
    assert verdict.rollout_complete and verdict.state == State.TRANSITIONING


def test_unobserved_change_is_transitioning() -> None:
    verdict = classify(deployment(generation=4, observed=3), REPLICA_SETS, [pod("a"), pod("b")], [])
    assert verdict.state == State.TRANSITIONING and not verdict.rollout_complete
    assert classify(deployment(), REPLICA_SETS, [pod("a")], [], min_generation=5).state == State.TRANSITIONING


def test_rollout_in_progress_is_transitioning() -> None:
    dep = deployment(updated=1, available=2, total=3)
    verdict = classify(dep, REPLICA_SETS, [pod("a", "old"), pod("b", "old"), pod("c", ready=False)], [])
    assert verdict.state == State.TRANSITIONING and "1/2 updated" in verdict.reason


def test_pods_in_init_are_transitioning_not_unhealthy() -> None:
    dep = deployment(available=0)
    verdict = classify(dep, REPLICA_SETS, [pod("a", ready=False), pod("b", ready=False)], [])
    assert verdict.state == State.TRANSITIONING


def test_init_failure_exit_code_3_fails_with_the_previous_log() -> None:
    crashed = pod("c", ready=False, restartCount=1, state={"waiting": {"reason": "CrashLoopBackOff"}},
                  lastState={"terminated": {"exitCode": 3, "reason": "Error"}})
    verdict = classify(deployment(updated=1, total=3), REPLICA_SETS, [pod("a", "old"), pod("b", "old"), crashed], [])
    assert verdict.state == State.FAILED and "init() failed" in verdict.reason
    assert verdict.evidence_pod == "c" and verdict.previous_log


def test_crash_loop_fails() -> None:
    crashed = pod("c", ready=False, restartCount=4, state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                  lastState={"terminated": {"exitCode": 1, "reason": "Error"}})
    verdict = classify(deployment(available=1), REPLICA_SETS, [pod("a"), crashed], [])
    assert verdict.state == State.FAILED and "CrashLoopBackOff" in verdict.reason and "exit code 1" in verdict.reason


def test_old_replica_set_problems_do_not_count() -> None:
    crashed = pod("x", "old", ready=False, restartCount=4, state={"waiting": {"reason": "CrashLoopBackOff"}})
    assert classify(deployment(total=3), REPLICA_SETS, [pod("a"), pod("b"), crashed], []).state == State.TRANSITIONING


def test_image_errors_fail() -> None:
    missing = pod("c", ready=False, state={"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}})
    verdict = classify(deployment(available=0), REPLICA_SETS, [missing], [])
    assert verdict.state == State.FAILED and "ErrImageNeverPull" in verdict.reason and "image not present" in verdict.reason


def test_oom_killed_fails() -> None:
    oom = pod("c", ready=False, restartCount=1, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    assert "memory" in classify(deployment(available=1), REPLICA_SETS, [pod("a"), oom], []).reason


def test_pending_unschedulable_reports_the_scheduler_message() -> None:
    pending = pod("c", phase="Pending", ready=False)
    message = "0/1 nodes are available: 1 Insufficient cpu."
    pending["status"]["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": message})
    verdict = classify(deployment(available=0), REPLICA_SETS, [pending], [])
    assert verdict.state == State.UNSCHEDULABLE and verdict.reason == message


def test_unschedulable_falls_back_to_the_event() -> None:
    pending = pod("c", phase="Pending", ready=False)
    pending["status"]["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    event = {"reason": "FailedScheduling", "message": "0/1 nodes are available: 1 Insufficient memory.",
             "involvedObject": {"kind": "Pod", "name": "c"}}
    assert classify(deployment(available=0), REPLICA_SETS, [pending], [event]).reason.endswith("Insufficient memory.")


def test_progress_deadline_fails() -> None:
    cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"}
    verdict = classify(deployment(available=0, conditions=[cond]), REPLICA_SETS, [pod("a", ready=False)], [])
    assert verdict.state == State.FAILED and "deadline of 600 s" in verdict.reason and verdict.evidence_pod == "a"


def test_lost_readiness_is_unhealthy() -> None:
    unready = pod("b", ready=False)
    unready["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:10:00Z"
    assert lost_readiness(unready) and not lost_readiness(pod("a", ready=False))
    event = {"reason": "Unhealthy", "message": "Readiness probe failed: 503", "involvedObject": {"name": "b"}}
    verdict = classify(deployment(available=1), REPLICA_SETS, [pod("a"), unready], [event])
    assert verdict.state == State.UNHEALTHY and "Readiness probe failed: 503" in verdict.reason


def test_liveness_restarts_are_unhealthy() -> None:
    restarted = pod("b", restartCount=2, lastState={"terminated": {"exitCode": 137, "reason": "Error"}})
    event = {"reason": "Unhealthy", "message": "Liveness probe failed: timeout", "involvedObject": {"name": "b"}}
    verdict = classify(deployment(available=1), REPLICA_SETS, [pod("a"), restarted], [event])
    assert verdict.state == State.UNHEALTHY and "restarted 2 times" in verdict.reason and "Liveness" in verdict.reason


def test_missing_deployment_fails() -> None:
    assert classify(None, [], [], []).state == State.FAILED


def test_event_lines_are_sorted_and_counted() -> None:
    events = [{"type": "Warning", "reason": "BackOff", "message": "restarting", "count": 3, "lastTimestamp": "2026-01-01T00:00:09Z",
               "involvedObject": {"kind": "Pod", "name": "b"}},
              {"type": "Normal", "reason": "Pulled", "message": "ok", "lastTimestamp": "2026-01-01T00:00:01Z",
               "involvedObject": {"kind": "Pod", "name": "a"}}]
    lines = event_lines(events)
    assert lines[0].endswith("Pod/a: ok") and lines[1].endswith("Pod/b: restarting (x3)")


def test_complete_rollout_waits_for_the_service_endpoints() -> None:
    verdict = classify(deployment(), REPLICA_SETS, [pod("a"), pod("b")], [], endpoints=1)
    assert verdict.state == State.TRANSITIONING and not verdict.rollout_complete and "1/2" in verdict.reason
    assert classify(deployment(), REPLICA_SETS, [pod("a"), pod("b")], [], endpoints=2).rollout_complete
    assert ready_endpoints({"subsets": [{"addresses": [{}, {}]}, {"addresses": [{}], "notReadyAddresses": [{}]}]}) == 3
    assert ready_endpoints(None) == 0
