"""render_manifests: the objects of one revision, from plain data."""

from __future__ import annotations

import base64
import json

import pytest

from nbdeploy.specs import AksDeploymentConfig
from nbdeploy.targets.kubernetes.manifests import (
    KEYS_DIR,
    LABEL_SERVICE,
    ManifestSpec,
    autoscale_settings,
    pick_hpa_api,
    render_manifests,
)


def spec(config: AksDeploymentConfig | None = None, **kw: object) -> ManifestSpec:
    values: dict[str, object] = {"service": "svc", "revision": 2, "namespace": "ns", "image": "nbdeploy/svc:abc",
                                 "config": config or AksDeploymentConfig(num_replicas=2), "workspace_id": "w1",
                                 "bundle_digest": "d" * 64, "model_ids": ("m:1",)}
    values.update(kw)
    return ManifestSpec(**values)  # type: ignore[arg-type]


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects}


def test_fixed_replicas_gives_deployment_and_service_without_hpa() -> None:
    objects = render_manifests(spec())
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    deployment = objects[0]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}}
    assert deployment["spec"]["selector"] == {"matchLabels": {LABEL_SERVICE: "svc"}}
    assert deployment["metadata"]["labels"]["nbdeploy.revision"] == "2"


def test_every_object_carries_the_service_labels() -> None:
    config = AksDeploymentConfig(autoscale_enabled=True, ingress_host="svc.example")
    for obj in render_manifests(spec(config, keys=("k" * 8, "s" * 8))):
        assert obj["metadata"]["labels"][LABEL_SERVICE] == "svc", obj["kind"]
        assert obj["metadata"]["labels"]["nbdeploy.managed"] == "true"
        assert obj["metadata"]["labels"]["nbdeploy.workspace"] == "w1"
        assert obj["metadata"]["namespace"] == "ns"


def test_pod_template_labels_match_the_selector_and_omit_the_revision() -> None:
    deployment = render_manifests(spec())[0]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_SERVICE] == "svc"
    assert "nbdeploy.revision" not in labels  # scaling alone does not restart pods


def test_container_settings_follow_the_config() -> None:
    config = AksDeploymentConfig(num_replicas=1, cpu_cores=0.25, memory_gb=1.5, cpu_cores_limit=1, memory_gb_limit=2,
                                 gpu_cores=1, scoring_timeout_ms=5000, termination_grace_seconds=2)
    container = render_manifests(spec(config))[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "1536Mi"},
                                      "limits": {"cpu": "1000m", "memory": "2048Mi", "nvidia.com/gpu": 1}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SCORING_TIMEOUT_MS"] == "5000" and env["SERVICE_NAME"] == "svc"
    assert "NBDEPLOY_AUTH_KEYS_FILE" not in env
    assert "lifecycle" not in container  # no preStop sleep with a 2 s grace
    pod = render_manifests(spec(config))[0]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 2


def test_probes_use_v1_defaults_adapted() -> None:
    container = render_manifests(spec())[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["livenessProbe"]["periodSeconds"] == 10 and container["livenessProbe"]["failureThreshold"] == 3
    assert container["livenessProbe"]["timeoutSeconds"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 310


def test_image_pull_policy_depends_on_the_registry() -> None:
    local = render_manifests(spec())[0]["spec"]["template"]["spec"]
    assert local["containers"][0]["imagePullPolicy"] == "Never" and "imagePullSecrets" not in local
    config = AksDeploymentConfig(num_replicas=1, image_registry="reg.example:5000", image_pull_secret="pull")
    remote = render_manifests(spec(config))[0]["spec"]["template"]["spec"]
    assert remote["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert remote["imagePullSecrets"] == [{"name": "pull"}]
    explicit = AksDeploymentConfig(num_replicas=1, image_pull_policy="Always")
    assert render_manifests(spec(explicit))[0]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_keys_become_a_secret_mounted_as_a_folder() -> None:
    objects = by_kind(render_manifests(spec(keys=("primary-1", "second-2"))))
    secret = objects["Secret"]
    assert secret["metadata"]["name"] == "svc-keys"
    assert json.loads(base64.b64decode(secret["data"]["keys.json"])) == {"primaryKey": "primary-1", "secondaryKey": "second-2"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    mount = pod["containers"][0]["volumeMounts"][0]
    assert mount["mountPath"] == KEYS_DIR and "subPath" not in mount
    assert pod["volumes"][0]["secret"]["secretName"] == "svc-keys"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["NBDEPLOY_AUTH_KEYS_FILE"] == f"{KEYS_DIR}/keys.json"
    assert render_manifests(spec(keys=("primary-1", "second-2")))[0]["kind"] == "Secret"  # applied before the pods


@pytest.mark.parametrize("service_type", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_service_types(service_type: str) -> None:
    service = by_kind(render_manifests(spec(AksDeploymentConfig(num_replicas=1, service_type=service_type))))["Service"]
    assert service["spec"]["type"] == service_type
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == {LABEL_SERVICE: "svc"}


def test_autoscale_renders_an_hpa_and_no_replicas() -> None:
    config = AksDeploymentConfig(autoscale_min_replicas=2, autoscale_max_replicas=4, autoscale_target_utilization=50)
    objects = by_kind(render_manifests(spec(config, hpa_api_version="autoscaling/v1")))
    assert "replicas" not in objects["Deployment"]["spec"]
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v1"
    assert hpa["spec"] == {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc"},
                           "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}


@pytest.mark.parametrize("api", ["autoscaling/v2", "autoscaling/v2beta2"])
def test_hpa_v2_metrics(api: str) -> None:
    hpa = by_kind(render_manifests(spec(AksDeploymentConfig(), hpa_api_version=api)))["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == api
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 70}}}]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 10)


def test_v1_autoscale_defaults() -> None:
    assert autoscale_settings(AksDeploymentConfig()) == (1, 10, 70)
    assert autoscale_settings(AksDeploymentConfig(autoscale_min_replicas=12)) == (12, 12, 70)


def test_pick_hpa_api_prefers_the_newest_served() -> None:
    assert pick_hpa_api({"autoscaling/v1", "autoscaling/v2beta1", "autoscaling/v2beta2"}) == "autoscaling/v2beta2"
    assert pick_hpa_api({"autoscaling/v1", "autoscaling/v2"}) == "autoscaling/v2"
    assert pick_hpa_api({"autoscaling/v1"}) == "autoscaling/v1"
    with pytest.raises(ValueError):
        pick_hpa_api(set())


def test_ingress_for_a_host() -> None:
    ingress = by_kind(render_manifests(spec(AksDeploymentConfig(num_replicas=1, ingress_host="svc.example"))))["Ingress"]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "svc.example"
    assert rule["http"]["paths"][0]["backend"] == {"service": {"name": "svc", "port": {"number": 80}}}


def test_rendering_is_pure_and_deterministic() -> None:
    assert render_manifests(spec(keys=("a" * 8, "b" * 8))) == render_manifests(spec(keys=("a" * 8, "b" * 8)))
