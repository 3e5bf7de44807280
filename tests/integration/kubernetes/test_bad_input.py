"""Bad input for the aks target: each a clear error, nothing left on the cluster."""

from __future__ import annotations

import base64

import pytest

from nbdeploy.errors import EngineUnavailable, InvalidSpec
from nbdeploy.service import Webservice, deploy
from nbdeploy.targets.kubernetes.cluster import KubernetesForbidden

from .conftest import NAMESPACE, RUN_ID, TEST_LABEL, aks_config, inference_config, labelled_objects, service_name, wait_until

pytestmark = pytest.mark.kubernetes


def test_invalid_namespace(cluster):
    with pytest.raises(InvalidSpec) as err:
        aks_config(cluster.kubeconfig, namespace="Team_A")
    assert err.value.key == "namespace" and "Team_A" in str(err.value)


def test_missing_namespace_without_permission_to_create(cluster, workspace, model, tmp_path):
    config = aks_config(cluster.kubeconfig, namespace=f"absent-{RUN_ID}", create_namespace=False)
    with pytest.raises(InvalidSpec) as err:
        deploy(service_name(), [model], inference_config(tmp_path / "app"), config, workspace=workspace)
    assert f"absent-{RUN_ID}" in str(err.value) and "create_namespace" in str(err.value)


def test_autoscale_with_replicas(cluster):
    with pytest.raises(InvalidSpec) as err:
        aks_config(cluster.kubeconfig, num_replicas=2, autoscale_enabled=True)
    assert "autoscale" in str(err.value)


def test_limits_below_requests(cluster):
    with pytest.raises(InvalidSpec) as err:
        aks_config(cluster.kubeconfig, cpu_cores=1.0, cpu_cores_limit=0.5)
    assert err.value.key == "cpu_cores_limit" and "below the request" in str(err.value)


def test_unreachable_cluster_names_kubeconfig_and_context(cluster, workspace, model, tmp_path):
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: nowhere, context: {cluster: c, user: u}}]\n"
        "current-context: nowhere\n")
    with pytest.raises(EngineUnavailable) as err:
        deploy(service_name(), [model], inference_config(tmp_path / "app"), aks_config(str(kubeconfig)), workspace=workspace)
    message = str(err.value)
    assert str(kubeconfig) in message and "'nowhere'" in message and "https://127.0.0.1:1" in message
    assert not Webservice.list(workspace)  # no record of a service that never started


def test_unknown_context(cluster, workspace, model, tmp_path):
    from nbdeploy.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        deploy(service_name(), [model], inference_config(tmp_path / "app"),
               aks_config(cluster.kubeconfig, context="no-such-context"), workspace=workspace)
    assert "no-such-context" in str(err.value) and cluster.kubeconfig in str(err.value)


def test_forbidden_verb_names_verb_and_resource(cluster, workspace, model, tmp_path):
    """A ServiceAccount that may read namespaces but not change anything in ours."""
    sa = f"readonly-{RUN_ID}"
    labels = {TEST_LABEL: RUN_ID}
    cluster.resource("v1", "ServiceAccount").create(namespace=NAMESPACE, body={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "labels": labels}})
    rbac = "rbac.authorization.k8s.io/v1"
    cluster.resource(rbac, "ClusterRole").create(body={
        "apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": sa, "labels": labels},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]})
    cluster.resource(rbac, "ClusterRoleBinding").create(body={
        "apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": sa, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]})

    def token() -> str | None:
        secrets = cluster.resource("v1", "Secret").get(namespace=NAMESPACE).items
        for s in secrets:
            if s.type == "kubernetes.io/service-account-token" and (s.metadata.annotations or {}).get(
                    "kubernetes.io/service-account.name") == sa and s.data and s.data.get("token"):
                return base64.b64decode(s.data["token"]).decode()
        return None

    value = wait_until(token, 20)
    assert value, "the token controller made no token for the ServiceAccount"
    server = cluster.server
    ca = cluster.api_client.configuration.ssl_ca_cert
    kubeconfig = tmp_path / "readonly.kubeconfig"
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}', certificate-authority: '{ca}'}}}}]\n"
        f"users: [{{name: ro, user: {{token: '{value}'}}}}]\ncontexts: [{{name: readonly, context: {{cluster: c, user: ro}}}}]\n"
        "current-context: readonly\n")
    name = service_name()
    with pytest.raises(KubernetesForbidden) as err:
        deploy(name, [model], inference_config(tmp_path / "app"), aks_config(str(kubeconfig)), workspace=workspace)
    message = str(err.value)
    assert err.value.verb == "patch" and err.value.resource == "secrets", message
    assert "refused to patch secrets" in message and NAMESPACE in message and "'readonly'" in message
    assert not labelled_objects(cluster, name)  # nothing half-made
