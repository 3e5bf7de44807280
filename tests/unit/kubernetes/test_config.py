"""AksDeploymentConfig: v1's defaults and rules, nbdeploy's Kubernetes settings, and the CLI option mapping."""

from __future__ import annotations

import pytest

from nbdeploy.errors import InvalidSpec
from nbdeploy.specs import AksDeploymentConfig, deployment_config_from_dict
from nbdeploy.targets.kubernetes.target import KubernetesTarget


def test_v1_defaults() -> None:
    config = AksDeploymentConfig()
    assert config.autoscaling and config.auth_enabled and not config.token_auth_enabled
    assert (config.cpu_cores, config.memory_gb, config.gpu_cores) == (0.1, 0.5, 0)
    assert (config.period_seconds, config.initial_delay_seconds, config.timeout_seconds,
            config.success_threshold, config.failure_threshold) == (10, 310, 2, 1, 3)
    assert config.service_type == "ClusterIP" and config.create_namespace
    assert config.termination_grace_seconds == 5 and config.image_registry is None


@pytest.mark.parametrize("kwargs, key", [
    ({"namespace": "Bad_NS"}, "namespace"),
    ({"namespace": "-x"}, "namespace"),
    ({"autoscale_enabled": True, "num_replicas": 2}, "num_replicas"),
    ({"num_replicas": 2, "autoscale_max_replicas": 3}, "autoscale_max_replicas"),
    ({"autoscale_min_replicas": 5, "autoscale_max_replicas": 2}, "autoscale_min_replicas"),
    ({"cpu_cores": 1, "cpu_cores_limit": 0.5}, "cpu_cores_limit"),
    ({"memory_gb": 2, "memory_gb_limit": 1}, "memory_gb_limit"),
    ({"image_pull_policy": "Sometimes"}, "image_pull_policy"),
    ({"termination_grace_seconds": -1}, "termination_grace_seconds"),
    ({"rollout_deadline_seconds": 0}, "rollout_deadline_seconds"),
    ({"service_type": "ExternalName"}, "service_type"),
])
def test_bad_values_name_their_key(kwargs: dict, key: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        AksDeploymentConfig(**kwargs)
    assert err.value.key == key


def test_deploymentconfig_json_round_trip() -> None:
    config = AksDeploymentConfig(num_replicas=2, namespace="team-a", kubeconfig="/k", context="c", create_namespace=False,
                                 image_registry="reg:5000", termination_grace_seconds=1, service_type="NodePort")
    doc = config.to_dict()
    assert doc["computeType"] == "AKS" and doc["numReplicas"] == 2 and doc["createNamespace"] is False
    assert doc["terminationGracePeriodSeconds"] == 1 and doc["imageRegistry"] == "reg:5000"
    again = deployment_config_from_dict(doc)
    assert again == config


def test_cli_options_map_to_config_fields() -> None:
    assert all(hasattr(AksDeploymentConfig(), o.field) for o in KubernetesTarget.options)
    assert {o.flag for o in KubernetesTarget.options} >= {"--replicas", "--kubeconfig", "--context", "--namespace",
                                                          "--autoscale-min", "--autoscale-max", "--cpu", "--memory-gb"}
    values = KubernetesTarget.option_values
    assert values({"num_replicas": 2, "cpu_cores": 0.5, "memory_gb": None}) == {"num_replicas": 2, "cpu_cores": 0.5, "autoscale_enabled": False}
    assert values({"autoscale_max_replicas": 3}) == {"autoscale_max_replicas": 3, "autoscale_enabled": True}


def test_autoscale_options_with_replicas_are_refused() -> None:
    with pytest.raises(InvalidSpec):
        AksDeploymentConfig().merged(**KubernetesTarget.option_values({"num_replicas": 2, "autoscale_min_replicas": 1}))


def test_missing_client_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from nbdeploy.errors import TargetNotAvailable
    from nbdeploy.targets.kubernetes.cluster import import_kubernetes

    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(TargetNotAvailable) as err:
        import_kubernetes()
    assert "pip install 'nbdeploy[kubernetes]'" in str(err.value)
