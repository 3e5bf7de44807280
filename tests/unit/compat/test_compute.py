"""azureml.core.compute: an AksCompute is a kubeconfig context attached to the workspace; provisioning refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nbdeploy.compat.azureml._v1 import resolve_deployment_config
from nbdeploy.compat.azureml.core import Workspace
from nbdeploy.compat.azureml.core.compute import AksCompute, AmlCompute, ComputeTarget
from nbdeploy.compat.azureml.core.compute_target import ComputeTargetException
from nbdeploy.compat.azureml.core.webservice import AksWebservice, LocalWebservice
from nbdeploy.errors import InvalidInput, NotFound
from nbdeploy.specs import AksDeploymentConfig


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig file (data only) with two contexts; its API server is a closed loopback port."""
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u1", "user": {"token": "t"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c1", "user": "u1"}},
                     {"name": "prod-aks", "context": {"cluster": "c1", "user": "u1", "namespace": "ml"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_lookup_of_a_missing_target_raises_compute_target_exception(ws: Workspace) -> None:
    with pytest.raises(ComputeTargetException) as info:
        ComputeTarget(workspace=ws, name="my-aks")
    assert isinstance(info.value, NotFound) and "attach" in str(info.value)


def test_v1_found_or_create_cell_refuses_provisioning_clearly(ws: Workspace) -> None:
    with pytest.raises(ComputeTargetException, match="attaches existing ones"):
        try:
            aks_target = ComputeTarget(workspace=ws, name="my-aks")
        except ComputeTargetException:
            prov_config = AksCompute.provisioning_configuration(vm_size="Standard_D3_v2", location="eastus")
            aks_target = ComputeTarget.create(workspace=ws, name="my-aks", provisioning_configuration=prov_config)
            aks_target.wait_for_completion(show_output=True)
    with pytest.raises(ComputeTargetException, match="training"):
        AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2")


def test_attach_then_lookup(ws: Workspace, kubeconfig: Path) -> None:
    config = AksCompute.attach_configuration(resource_group="rg", cluster_name="prod-aks", kubeconfig=str(kubeconfig))
    assert config.context == "prod-aks"  # v1's cluster_name names a context of the kubeconfig
    target = ComputeTarget.attach(ws, "my-aks", config)
    found = ComputeTarget(workspace=ws, name="my-aks")
    assert isinstance(found, AksCompute) and found.type == "AKS"
    assert (found.kubeconfig, found.context, found.cluster_fqdn) == (str(kubeconfig), "prod-aks", "https://127.0.0.1:1")
    assert list(ws.compute_targets) == ["my-aks"] and isinstance(ws.compute_targets["my-aks"], AksCompute)
    assert target.serialize()["context"] == "prod-aks"
    found.detach()
    with pytest.raises(ComputeTargetException):
        ComputeTarget(ws, "my-aks")


def test_attach_configuration_context_choice(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert AksCompute.attach_configuration(cluster_name="not-a-context", kubeconfig=str(kubeconfig)).context == "dev"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert AksCompute.attach_configuration(context="prod-aks", namespace="team").namespace == "team"
    assert AksCompute.attach_configuration(resource_id="/subscriptions/s/managedClusters/prod-aks").context == "prod-aks"
    with pytest.raises(ComputeTargetException, match="its contexts: dev, prod-aks"):
        AksCompute.attach_configuration(context="nope")
    with pytest.raises(ComputeTargetException, match="does not exist"):
        AksCompute.attach_configuration(kubeconfig=str(kubeconfig) + ".missing")


def test_attach_refuses_bad_names_and_non_aks_configs(ws: Workspace, kubeconfig: Path) -> None:
    config = AksCompute.attach_configuration(kubeconfig=str(kubeconfig))
    with pytest.raises(ComputeTargetException, match="compute target name"):
        ComputeTarget.attach(ws, "bad name!", config)
    with pytest.raises(ComputeTargetException, match="Kubernetes clusters only"):
        ComputeTarget.attach(ws, "x1", object())


def test_wait_for_completion_checks_the_cluster_answers(ws: Workspace, kubeconfig: Path) -> None:
    target = ComputeTarget.attach(ws, "dead-aks", AksCompute.attach_configuration(kubeconfig=str(kubeconfig)))
    with pytest.raises(ComputeTargetException, match="Failed"):
        target.wait_for_completion(show_output=False)
    assert target.provisioning_state == "Failed" and target.provisioning_errors


def test_deployment_target_chooses_the_cluster(ws: Workspace, kubeconfig: Path) -> None:
    target = ComputeTarget.attach(ws, "my-aks", AksCompute.attach_configuration(context="prod-aks", kubeconfig=str(kubeconfig), namespace="ml"))
    config = resolve_deployment_config(ws, AksWebservice.deploy_configuration(num_replicas=1), target)
    assert isinstance(config, AksDeploymentConfig)
    assert (config.kubeconfig, config.context, config.compute_target_name, config.namespace, config.num_replicas) == \
        (str(kubeconfig), "prod-aks", "my-aks", "ml", 1)
    own_ns = resolve_deployment_config(ws, AksWebservice.deploy_configuration(namespace="other"), target)
    assert own_ns.namespace == "other"  # the deployment config's namespace wins
    assert resolve_deployment_config(ws, None, target).context == "prod-aks"  # v1 default AKS config
    by_name = resolve_deployment_config(ws, AksWebservice.deploy_configuration(compute_target_name="my-aks"))
    assert by_name.context == "prod-aks" and by_name.kubeconfig == str(kubeconfig)
    with pytest.raises(InvalidInput, match="AKS cluster"):
        resolve_deployment_config(ws, LocalWebservice.deploy_configuration(), target)
    with pytest.raises(ComputeTargetException):
        resolve_deployment_config(ws, AksWebservice.deploy_configuration(compute_target_name="unknown"))


def test_ssl_on_the_cluster_is_refused_not_ignored(ws: Workspace, kubeconfig: Path) -> None:
    config = AksCompute.attach_configuration(kubeconfig=str(kubeconfig))
    with pytest.raises(ComputeTargetException, match="SSL"):
        config.enable_ssl(leaf_domain_label="contoso")
    target = ComputeTarget.attach(ws, "my-aks", config)
    with pytest.raises(ComputeTargetException, match="ingress"):
        target.update(object())
