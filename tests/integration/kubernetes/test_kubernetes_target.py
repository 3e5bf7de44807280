"""The aks target on the real test cluster: deploy, scale, spread, failed update, Unschedulable, keys, delete."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import httpx
import pytest

from nbdeploy.errors import DeploymentFailed, UpdateFailed
from nbdeploy.service import deploy

from .conftest import NAMESPACE, aks_config, inference_config, labelled_objects, service_name, wait_until

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]


def ready_pods(cluster: Any, service: str) -> list[str]:
    pods = cluster.resource("v1", "Pod").get(namespace=NAMESPACE, label_selector=f"nbdeploy.service={service}").items
    return sorted(p.metadata.name for p in pods if not p.metadata.deletionTimestamp and any(
        c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))


def test_deploy_two_replicas_scale_to_three_logs_and_delete(cluster, workspace, model, tmp_path):
    name = service_name()
    svc = deploy(name, [model], inference_config(tmp_path / "app"), aks_config(cluster.kubeconfig, num_replicas=2),
                 workspace=workspace)
    t0 = time.monotonic()
    status = svc.wait_for_deployment(timeout_sec=180)
    print(f"\ndeploy -> Healthy with 2 replicas: {time.monotonic() - t0:.1f} s (after the image build)")
    assert status.scoring_uri and status.scoring_uri.startswith("http://127.0.0.1:")  # ClusterIP: port-forward
    first = ready_pods(cluster, name)
    assert len(first) == 2
    answer = svc.run({"data": [1, 2]})
    assert answer["y"] == [2.0, 4.0] and answer["pod"] in first

    image = svc.image
    svc.update(deployment_config=svc.deployment_config.merged(num_replicas=3), timeout_sec=120)
    pods = ready_pods(cluster, name)
    assert len(pods) == 3
    if svc.image == image:  # (the image changes only when nbdeploy's own server code changed meanwhile)
        assert set(first) <= set(pods)  # scaling alone restarts nothing
    assert svc.state == "Healthy" and svc.revision == 2
    assert svc.run({"data": [3]})["y"] == [6.0]

    logs = svc.get_logs()
    for pod in pods:
        assert f"[{pod}]" in logs
    assert "--- events ---" in logs and "Scheduled" in logs

    svc.delete()
    assert wait_until(lambda: not labelled_objects(cluster, name), 30), labelled_objects(cluster, name)


def test_load_spreads_across_replicas(cluster, workspace, model, tmp_path):
    name = service_name()
    svc = deploy(name, [model], inference_config(tmp_path / "app"),
                 aks_config(cluster.kubeconfig, num_replicas=3, service_type="NodePort", auth_enabled=False),
                 workspace=workspace)
    svc.wait_for_deployment(timeout_sec=180)
    uri = svc.scoring_uri
    assert uri.startswith("http://127.0.0.1:3")  # the NodePort on loopback
    per_pod: collections.Counter[str] = collections.Counter()
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(trust_env=False, limits=no_keepalive, timeout=10) as client:
        # kube-proxy programs a new endpoint within its sync period (~1 s) of the Service listing it
        assert wait_until(lambda: len({client.post(uri, json={"data": [0]}).json()["pod"] for _ in range(30)}) == 3, 15)
        t0 = time.monotonic()
        for i in range(300):
            response = client.post(uri, json={"data": [i]})
            assert response.status_code == 200, response.text
            per_pod[response.json()["pod"]] += 1
    seconds = time.monotonic() - t0
    print(f"\n300 requests in {seconds:.1f} s ({300 / seconds:.0f}/s), per pod: "
          + ", ".join(f"{pod}: {n}" for pod, n in sorted(per_pod.items())))
    assert len(per_pod) == 3 and min(per_pod.values()) >= 30


def test_failed_update_rolls_back_with_zero_failed_requests(cluster, workspace, model, tmp_path):
    name = service_name()
    svc = deploy(name, [model], inference_config(tmp_path / "v1"),
                 aks_config(cluster.kubeconfig, num_replicas=2, service_type="NodePort"), workspace=workspace)
    svc.wait_for_deployment(timeout_sec=180)
    uri, key = svc.scoring_uri, svc.get_keys()[0]
    before = ready_pods(cluster, name)
    results: collections.Counter[str] = collections.Counter()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(trust_env=False, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            while not stop.is_set():
                try:
                    r = http.post(uri, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"})
                    results["ok" if r.status_code == 200 and r.json()["y"] == [2.0] else f"status {r.status_code}"] += 1
                except httpx.HTTPError as exc:
                    results[type(exc).__name__] += 1
                time.sleep(0.01)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        bad = inference_config(tmp_path / "v2", init_extra='raise RuntimeError("the model file is corrupt")')
        with pytest.raises(UpdateFailed) as err:
            svc.update(inference_config=bad, timeout_sec=180)
        time.sleep(1)
    finally:
        stop.set()
        thread.join()
    print(f"\nrequests during the failed update: {dict(results)}")
    assert results["ok"] > 20 and set(results) == {"ok"}, results
    assert "init() failed" in str(err.value) and "the model file is corrupt" in str(err.value)
    assert svc.revision == 1 and svc.state == "Healthy"
    assert ready_pods(cluster, name) == before  # the old pods served throughout
    assert svc.revisions()[-1]["outcome"] == "failed"
    assert svc.run({"data": [2]})["y"] == [4.0]


def test_cpu_larger_than_the_node_is_unschedulable(cluster, workspace, model, tmp_path):
    name = service_name()
    svc = deploy(name, [model], inference_config(tmp_path / "app"), aks_config(cluster.kubeconfig, cpu_cores=64),
                 workspace=workspace)
    with pytest.raises(DeploymentFailed) as err:
        svc.wait_for_deployment(timeout_sec=60)
    assert err.value.state == "Unschedulable"
    assert "0/1 nodes are available" in err.value.reason and "Insufficient cpu" in err.value.reason
    svc.delete()
    assert wait_until(lambda: not labelled_objects(cluster, name), 30)


def test_key_auth_and_regen_key(cluster, workspace, model, tmp_path):
    name = service_name()
    svc = deploy(name, [model], inference_config(tmp_path / "app"),
                 aks_config(cluster.kubeconfig, num_replicas=2, service_type="NodePort"), workspace=workspace)
    svc.wait_for_deployment(timeout_sec=180)
    uri = svc.scoring_uri
    old_key = svc.get_keys()[0]

    def post(key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            return http.post(uri, json={"data": [1]}, headers=headers, timeout=10).status_code

    assert post(None) == 401
    assert post(old_key) == 200
    t0 = time.monotonic()
    svc.regen_key("Primary")
    print(f"\nregen_key took effect on every pod in {time.monotonic() - t0:.1f} s")
    new_key = svc.get_keys()[0]
    assert new_key != old_key
    assert [post(new_key) for _ in range(10)] == [200] * 10  # every replica took it
    assert post(old_key) == 401
    assert svc.run({"data": [1]})["y"] == [2.0]


def test_autoscale_uses_the_newest_hpa_api_and_load_balancer_falls_back_to_the_node_port(cluster, workspace, model, tmp_path):
    name = service_name()
    config = aks_config(cluster.kubeconfig, num_replicas=None, autoscale_min_replicas=2, autoscale_max_replicas=3,
                        service_type="LoadBalancer")
    svc = deploy(name, [model], inference_config(tmp_path / "app"), config, workspace=workspace)
    svc.wait_for_deployment(timeout_sec=180)
    hpas = cluster.resource("autoscaling/v2beta2", "HorizontalPodAutoscaler").get(
        namespace=NAMESPACE, label_selector=f"nbdeploy.service={name}").items
    assert len(hpas) == 1 and (hpas[0].spec.minReplicas, hpas[0].spec.maxReplicas) == (2, 3)
    assert hpas[0].spec.metrics[0].resource.target.averageUtilization == 70  # v2beta2 shape: 1.20 has no autoscaling/v2
    assert wait_until(lambda: len(ready_pods(cluster, name)) == 2, 60)  # the HPA enforces its minimum
    assert svc.scoring_uri.startswith("http://127.0.0.1:3")  # no load balancer on this cluster: its node port
    assert svc.run({"data": [1]})["y"] == [2.0]
    svc.delete()
    assert wait_until(lambda: not labelled_objects(cluster, name), 30), labelled_objects(cluster, name)
