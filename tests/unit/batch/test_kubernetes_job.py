"""The Kubernetes batch runner's pure parts: Indexed Job manifest, shard ranges, per-shard states."""

from __future__ import annotations

import pytest

from nbdeploy.batch.kubernetes import (
    BatchJobSpec,
    classify_shards,
    render_batch_job,
    shard_range,
)
from nbdeploy.errors import InvalidName


def spec(**changes):
    base = dict(name="score-diabetes", namespace="nbdeploy", image="nbdeploy/diabetes:abc", host_path="/srv/batch",
                inputs=("data/*.csv",), output="out", node_count=2, process_count_per_node=3,
                options=("--mini-batch-size", "10MB"), env={"A": "1"}, cpu="2", memory="4Gi")
    base.update(changes)
    return BatchJobSpec(**base)


def test_indexed_job_runs_node_count_pods_with_the_shard_options():
    job = render_batch_job(spec())
    assert job["kind"] == "Job" and job["metadata"]["labels"]["nbdeploy.batch-job"] == "score-diabetes"
    body = job["spec"]
    assert (body["completionMode"], body["completions"], body["parallelism"]) == ("Indexed", 2, 2)
    pod = body["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["volumes"] == [{"name": "batch-data", "hostPath": {"path": "/srv/batch", "type": "Directory"}}]
    container = pod["containers"][0]
    assert container["command"] == [
        "python", "-m", "nbdeploy", "batch", "run", "--shard-from-env", "2", "--processes", "3",
        "-i", "/mnt/batch/data/*.csv", "-o", "/mnt/batch/out", "--mini-batch-size", "10MB"]
    assert container["volumeMounts"] == [{"name": "batch-data", "mountPath": "/mnt/batch"}]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert container["env"] == [{"name": "A", "value": "1"}]


def test_bad_job_name():
    with pytest.raises(InvalidName):
        render_batch_job(spec(name="Score_Diabetes"))


@pytest.mark.parametrize("batches, count", [(10, 3), (2, 2), (1, 4), (0, 2), (100, 7)])
def test_shards_cover_every_mini_batch_once_in_order(batches, count):
    covered = [i for index in range(count) for i in shard_range(batches, index, count)]
    assert covered == list(range(batches))


def _pod(index, phase, created="2026-01-01T00:00:00Z", **status):
    return {"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}, "creationTimestamp": created},
            "status": {"phase": phase, **status}}


def test_shard_states_carry_reasons():
    job = {"spec": {"completions": 4}, "status": {}}
    oom = {"containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}
    unschedulable = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": "0/1 nodes are available: 1 Insufficient memory."}]}
    pods = [_pod(0, "Succeeded"), _pod(1, "Failed", **oom), _pod(1, "Running", created="2026-01-01T00:01:00Z"),
            _pod(2, "Pending", **unschedulable)]
    state, shards = classify_shards(job, pods)
    assert state == "Running"
    assert [(s.state, s.reason) for s in shards] == [
        ("Succeeded", ""), ("Running", ""), ("Pending", "Unschedulable: 0/1 nodes are available: 1 Insufficient memory."),
        ("Pending", "no pod yet")]
    failed_job = {"spec": {"completions": 1}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    state, shards = classify_shards(failed_job, [_pod(0, "Failed", **oom)])
    assert (state, shards[0].reason) == ("Failed", "OOMKilled, exit code 137")
