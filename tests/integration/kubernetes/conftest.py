"""Fixtures for tests against the real test cluster (``bash tests/engines/kubernetes.sh up``).

Every service a test deploys is named ``k<run id>-<n>`` and lives in the run's own namespace
``nbdeploy-test-<run id>`` (labelled ``nbdeploy.test-run``); teardown deletes the services, then the
namespace. Under CI (``CI=true``) a missing cluster, Docker engine or base image fails the tests; elsewhere
they are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
BASE_IMAGE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN_ID = uuid.uuid4().hex[:6]
NAMESPACE = f"nbdeploy-test-{RUN_ID}"
TEST_LABEL = "nbdeploy.test-run"

SCORE = """\
import json, os, socket

def init():
    global weight
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        weight = json.load(f)["w"]
    {init_extra}

def run(raw_data):
    return {{"y": [weight * x for x in json.loads(raw_data)["data"]], "pod": socket.gethostname()}}
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: Kubernetes tests must run, never skip)")
    pytest.skip(reason)


def kubeconfig_path() -> str | None:
    """$NBDEPLOY_TEST_KUBECONFIG, else what tests/engines/kubernetes.sh reports for a running test cluster."""
    if os.environ.get("NBDEPLOY_TEST_KUBECONFIG"):
        return os.environ["NBDEPLOY_TEST_KUBECONFIG"]
    result = subprocess.run(["bash", str(ROOT / "tests/engines/kubernetes.sh"), "kubeconfig"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 and result.stdout.strip() else None


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    from nbdeploy.errors import NbdeployError
    from nbdeploy.targets.kubernetes.cluster import connect

    path = kubeconfig_path()
    if not path:
        _unavailable("no test cluster: bash tests/engines/kubernetes.sh up")
    try:
        from nbdeploy.builders.docker_builder import docker_client

        docker_client().images.get(BASE_IMAGE)
    except Exception as exc:  # noqa: BLE001 - EngineUnavailable, ImageNotFound
        _unavailable(f"Docker engine or base image {BASE_IMAGE} missing ({exc}): bash tests/engines/docker.sh up")
    try:
        conn = connect(path)
    except NbdeployError as exc:
        _unavailable(str(exc))
    conn.resource("v1", "Namespace").create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NAMESPACE, "labels": {TEST_LABEL: RUN_ID}}})
    yield conn
    conn.resource("v1", "Namespace").delete(name=NAMESPACE)
    for obj in ("ClusterRoleBinding", "ClusterRole"):
        for item in conn.resource("rbac.authorization.k8s.io/v1", obj).get(label_selector=f"{TEST_LABEL}={RUN_ID}").items:
            conn.resource("rbac.authorization.k8s.io/v1", obj).delete(name=item.metadata.name)


@pytest.fixture
def workspace(cluster: Any, tmp_path: Path) -> Iterator[Any]:
    import nbdeploy
    from nbdeploy.service import Webservice

    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):
        try:
            svc.delete()
        except Exception:  # noqa: BLE001 - best effort; the namespace goes at the end of the session anyway
            pass


_counter = iter(range(10_000))


def service_name() -> str:
    return f"k{RUN_ID}-{next(_counter)}"


@pytest.fixture
def model(workspace: Any, tmp_path: Path) -> Any:
    import nbdeploy

    path = tmp_path / "model.json"
    path.write_text(json.dumps({"w": 2.0}))
    return nbdeploy.Model.register(path, "weights", workspace=workspace)


def inference_config(folder: Path, init_extra: str = "pass", name: str = "score.py") -> Any:
    from nbdeploy.specs import Environment, InferenceConfig

    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(SCORE.format(init_extra=textwrap.dedent(init_extra)))
    env = Environment("k8s-test")
    env.docker.base_image = BASE_IMAGE
    return InferenceConfig(str(script), environment=env)


def aks_config(kubeconfig: str, **kwargs: Any) -> Any:
    from nbdeploy.specs import AksDeploymentConfig

    values: dict[str, Any] = {"num_replicas": 1, "namespace": NAMESPACE, "kubeconfig": kubeconfig,
                              "termination_grace_seconds": 2, "cpu_cores": 0.05, "memory_gb": 0.1}
    values.update(kwargs)
    return AksDeploymentConfig(**values)


def labelled_objects(cluster: Any, service: str, namespace: str = NAMESPACE) -> list[str]:
    """Every object in ``namespace`` carrying ``nbdeploy.service=<service>``, as ``Kind/name``."""
    kinds = [("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("v1", "Service"), ("v1", "Secret"),
             ("v1", "Endpoints"), ("autoscaling/v1", "HorizontalPodAutoscaler"), ("networking.k8s.io/v1", "Ingress")]
    found = []
    for api, kind in kinds:
        for item in cluster.resource(api, kind).get(namespace=namespace, label_selector=f"nbdeploy.service={service}").items:
            found.append(f"{kind}/{item.metadata.name}")
    return found


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
