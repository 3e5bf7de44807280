"""Speed of the aks target on the test cluster.

Prints a table: deploy call -> Healthy with 2 replicas from a cached image (target < 15 s); an update to a new
revision fully rolled out, once with a config change (new pods, same image) and once with a changed score.py
(image rebuild + new pods) (target < 20 s); scaling 2 -> 3. Anchor, measured in the same run: the same image
as a bare Deployment (2 replicas, readiness probe) created with the client, until both pods are ready; the
ratio says what nbdeploy adds (checks, smoke requests, bookkeeping).

Needs the cluster: ``bash tests/engines/kubernetes.sh up``. Run: ``.venv/bin/python benchmarks/kubernetes.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# this file is named like the client package: keep `import kubernetes` from finding it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import nbdeploy  # noqa: E402
from nbdeploy.service import Webservice, deploy  # noqa: E402
from nbdeploy.specs import AksDeploymentConfig, Environment, InferenceConfig  # noqa: E402
from nbdeploy.targets.kubernetes.cluster import connect  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
NAMESPACE = f"nbdeploy-bench-{uuid.uuid4().hex[:6]}"
SCORE = """\
import json, os

def init():
    global weight
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        weight = json.load(f)["w"]

def run(raw_data):
    return [weight * x for x in json.loads(raw_data)["data"]]  # {tag}
"""


def kubeconfig() -> str:
    out = subprocess.run(["bash", str(ROOT / "tests/engines/kubernetes.sh"), "kubeconfig"], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def inference(folder: Path, tag: str) -> InferenceConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "score.py").write_text(SCORE.format(tag=tag))
    env = Environment("bench")
    env.docker.base_image = BASE
    return InferenceConfig(str(folder / "score.py"), environment=env)


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare_deployment(cluster: Any, image: str) -> float:
    """The anchor: a plain Deployment of ``image`` until 2 pods are ready."""
    name = "bench-bare"
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"nbdeploy.bench": "bare"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "s", "image": image, "imagePullPolicy": "Never",
                "readinessProbe": {"httpGet": {"path": "/health/ready", "port": 5001}, "periodSeconds": 1}}]}}},
    }
    resource = cluster.resource("apps/v1", "Deployment")
    t0 = time.perf_counter()
    resource.create(body=body, namespace=NAMESPACE)
    while (resource.get(name=name, namespace=NAMESPACE).status.readyReplicas or 0) < 2:
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    resource.delete(name=name, namespace=NAMESPACE)
    return seconds


def main() -> int:
    path = kubeconfig()
    cluster = connect(path)
    cluster.resource("v1", "Namespace").create(body={"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": NAMESPACE}})
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = nbdeploy.Workspace.create(Path(tmp) / "ws")
        (Path(tmp) / "model.json").write_text(json.dumps({"w": 2.0}))
        model = nbdeploy.Model.register(Path(tmp) / "model.json", "weights", workspace=ws)
        config = AksDeploymentConfig(num_replicas=2, namespace=NAMESPACE, kubeconfig=path, termination_grace_seconds=1,
                                     cpu_cores=0.05, memory_gb=0.1)
        ic = inference(Path(tmp) / "v1", "v1")
        try:
            # warm-up: builds the image once, so the measured deploy uses the cached image
            build = timed(lambda: deploy("bench-warm", [model], ic, config, workspace=ws).wait_for_deployment(timeout_sec=600))
            Webservice("bench-warm", ws).delete()
            image = None

            def first() -> None:
                nonlocal image
                svc = deploy("bench-k8s", [model], ic, config, workspace=ws)
                svc.wait_for_deployment(timeout_sec=300)
                image = svc.image

            rows.append(("deploy -> Healthy, 2 replicas, cached image", timed(first), "< 15 s"))
            svc = Webservice("bench-k8s", ws)
            assert svc.run({"data": [1]}) == [2.0]
            rows.append(("update: config change -> rolled out (new pods, same image)", timed(
                lambda: svc.update(deployment_config=svc.deployment_config.merged(scoring_timeout_ms=30000))), "< 20 s"))
            rows.append(("update: new score.py -> rolled out (rebuild + new pods)", timed(
                lambda: svc.update(inference_config=inference(Path(tmp) / "v2", "v2"))), "< 20 s"))
            rows.append(("update: scale 2 -> 3 replicas", timed(
                lambda: svc.update(deployment_config=svc.deployment_config.merged(num_replicas=3))), ""))
            rows.append(("delete (every object gone, pods included)", timed(svc.delete), ""))
            anchor = bare_deployment(cluster, image or "")
        finally:
            for s in Webservice.list(ws):
                s.delete()
            cluster.resource("v1", "Namespace").delete(name=NAMESPACE)
    print(f"\nKubernetes target on the test cluster ({cluster.server}); first deploy incl. image build: {build:.1f} s")
    print(f"anchor: bare Deployment, same image, 2 replicas ready: {anchor:.1f} s\n")
    print(f"| {'step':<60} | {'seconds':>7} | {'x anchor':>8} | target |")
    print(f"|{'-' * 62}|{'-' * 9}|{'-' * 10}|--------|")
    for label, seconds, target in rows:
        print(f"| {label:<60} | {seconds:7.1f} | {seconds / anchor:8.2f} | {target:<6} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
