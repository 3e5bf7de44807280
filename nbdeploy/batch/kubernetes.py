"""The Kubernetes batch runner's pure parts: the Indexed Job manifest, shard ranges, per-shard states.

Shape: one Indexed Job (``completionMode: Indexed``) with ``node_count`` pods in parallel, each running the
local runner (``process_count_per_node`` workers) over its contiguous shard of the mini-batch plan
(:func:`shard_range`, index from ``JOB_COMPLETION_INDEX``), on a hostPath volume that holds the inputs and
the output. Each shard writes ``<output>/shard-<i>/`` with its own journal, so a re-submitted Job resumes;
concatenating the shards' output files in shard order gives the whole output in input order.

NOT DONE (say so before relying on it): applying the Job, ``nbdeploy batch status|logs|cancel``, merging the
shard outputs, and an image that carries ``nbdeploy.batch`` (service images carry only the scoring server).
The test cluster runs Kubernetes 1.20, which has no Indexed Jobs (alpha in 1.21, beta in 1.22).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbdeploy.errors import InvalidName

DATA_MOUNT = "/mnt/batch"
LABEL_JOB = "nbdeploy.batch-job"
LABEL_MANAGED = "nbdeploy.managed"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,50}[a-z0-9])?$")
RUNNING, SUCCEEDED, FAILED, PENDING = "Running", "Succeeded", "Failed", "Pending"


@dataclass(frozen=True)
class BatchJobSpec:
    """Everything that shapes a batch Job."""

    name: str
    namespace: str
    image: str
    host_path: str
    """Folder on the node(s) holding inputs and output; mounted at ``/mnt/batch``."""
    inputs: tuple[str, ...]
    """Input paths or globs relative to ``host_path``."""
    output: str
    """Output folder relative to ``host_path``."""
    node_count: int = 1
    process_count_per_node: int = 1
    options: tuple[str, ...] = ()
    """Further ``nbdeploy batch run`` options (``--mini-batch-size``, ``--error-threshold``, ...)."""
    env: Mapping[str, str] = field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None
    backoff_limit: int = 3
    image_pull_policy: str = "IfNotPresent"
    workspace_id: str = ""


def check_job_name(name: str) -> None:
    if not _NAME_RE.match(name or ""):
        raise InvalidName(
            "batch job", str(name), "use up to 52 lower-case letters, digits and '-', starting with a letter"
        )


def job_labels(spec: BatchJobSpec) -> dict[str, str]:
    labels = {LABEL_JOB: spec.name, LABEL_MANAGED: "true", "app.kubernetes.io/managed-by": "nbdeploy"}
    if spec.workspace_id:
        labels["nbdeploy.workspace"] = spec.workspace_id
    return labels


def render_batch_job(spec: BatchJobSpec) -> dict[str, Any]:
    """The Indexed Job for ``spec`` (a plain dict for the dynamic client)."""
    check_job_name(spec.name)
    command = [
        "python",
        "-m",
        "nbdeploy",
        "batch",
        "run",
        "--shard-from-env",
        str(spec.node_count),
        "--processes",
        str(spec.process_count_per_node),
        *[arg for path in spec.inputs for arg in ("-i", f"{DATA_MOUNT}/{path.lstrip('/')}")],
        "-o",
        f"{DATA_MOUNT}/{spec.output.lstrip('/')}",
        *spec.options,
    ]
    env = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    container: dict[str, Any] = {
        "name": "batch",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command,
        "env": env,
        "volumeMounts": [{"name": "batch-data", "mountPath": DATA_MOUNT}],
    }
    requests = {k: v for k, v in (("cpu", spec.cpu), ("memory", spec.memory)) if v}
    if requests:
        container["resources"] = {"requests": requests, "limits": dict(requests)}
    labels = job_labels(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.node_count,
            "parallelism": spec.node_count,
            "backoffLimit": spec.backoff_limit,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "batch-data", "hostPath": {"path": spec.host_path, "type": "Directory"}}],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                },
            },
        },
    }


def shard_range(batches: int, index: int, count: int) -> range:
    """Mini-batches of shard ``index`` of ``count``: contiguous, sizes differing by at most one."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in 0..{count - 1}")
    return range(index * batches // count, (index + 1) * batches // count)


@dataclass(frozen=True)
class ShardState:
    index: int
    state: str
    reason: str = ""


def classify_shards(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> tuple[str, list[ShardState]]:
    """The Job's state and each shard's, with reasons (the scheduler's message, OOMKilled, exit code)."""
    count = int(job.get("spec", {}).get("completions") or 1)
    latest: dict[int, Mapping[str, Any]] = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        index = meta.get("annotations", {}).get(INDEX_ANNOTATION)
        if index is None:
            continue
        i = int(index)
        if i not in latest or meta.get("creationTimestamp", "") >= latest[i].get("metadata", {}).get(
            "creationTimestamp", ""
        ):
            latest[i] = pod
    shards = [_pod_state(i, latest.get(i)) for i in range(count)]
    conditions = {c.get("type"): c for c in job.get("status", {}).get("conditions", []) if c.get("status") == "True"}
    if "Failed" in conditions:
        return FAILED, shards
    if "Complete" in conditions or all(s.state == SUCCEEDED for s in shards):
        return SUCCEEDED, shards
    return RUNNING, shards


def _pod_state(index: int, pod: Mapping[str, Any] | None) -> ShardState:
    if pod is None:
        return ShardState(index, PENDING, "no pod yet")
    status = pod.get("status", {})
    phase = status.get("phase", "Pending")
    for condition in status.get("conditions", []):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return ShardState(
                index, PENDING, f"{condition.get('reason', 'Unschedulable')}: {condition.get('message', '')}".strip()
            )
    for container in status.get("containerStatuses", []):
        terminated = container.get("state", {}).get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            reason = terminated.get("reason", "Error")
            text = f"{reason}, exit code {terminated.get('exitCode')}"
            if terminated.get("message"):
                text += f": {terminated['message'].strip()}"
            return ShardState(index, FAILED, text)
        waiting = container.get("state", {}).get("waiting")
        if waiting and waiting.get("reason") in (
            "ErrImagePull",
            "ImagePullBackOff",
            "CreateContainerConfigError",
            "InvalidImageName",
        ):
            return ShardState(index, PENDING, f"{waiting['reason']}: {waiting.get('message', '')}".strip())
    if phase == "Succeeded":
        return ShardState(index, SUCCEEDED)
    if phase == "Failed":
        return ShardState(index, FAILED, status.get("reason", "") or status.get("message", ""))
    return ShardState(index, RUNNING if phase == "Running" else PENDING)
