"""v1's attach-AKS flow on the real test cluster: attach a kubeconfig context, then deploy with deployment_target."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import NAMESPACE, inference_config, labelled_objects, service_name, wait_until

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]


def test_attach_then_deploy_to_the_attached_cluster(cluster: Any, workspace: Any, model: Any, tmp_path: Any) -> None:
    from nbdeploy.compat.azureml.core import Model, Workspace
    from nbdeploy.compat.azureml.core.compute import AksCompute, ComputeTarget
    from nbdeploy.compat.azureml.core.compute_target import ComputeTargetException
    from nbdeploy.compat.azureml.core.webservice import AksWebservice, Webservice

    ws = Workspace(path=workspace.path)
    try:  # the v1 cell, with attach in place of provisioning
        aks_target = ComputeTarget(workspace=ws, name="test-aks")
    except ComputeTargetException:
        attach_config = AksCompute.attach_configuration(cluster_name=cluster.context, kubeconfig=cluster.kubeconfig,
                                                        namespace=NAMESPACE)
        aks_target = ComputeTarget.attach(ws, "test-aks", attach_config)
    aks_target.wait_for_completion(show_output=True)
    assert aks_target.provisioning_state == "Succeeded" and aks_target.context == cluster.context

    name = service_name()
    config = AksWebservice.deploy_configuration(num_replicas=1, cpu_cores=0.05, memory_gb=0.1)
    service = Model.deploy(ws, name, [model], inference_config(tmp_path / "app"), config, deployment_target=aks_target)
    try:
        service.wait_for_deployment(show_output=True)
        assert type(Webservice(ws, name)).__name__ == "AksWebservice"
        deployed = service.deployment_config
        assert (deployed.kubeconfig, deployed.context, deployed.compute_target_name) == (cluster.kubeconfig, cluster.context, "test-aks")
        assert labelled_objects(cluster, name)  # it went to the attached cluster, in the attachment's namespace
        assert service.run({"data": [1, 2]})["y"] == [2.0, 4.0]
    finally:
        service.delete()
    assert wait_until(lambda: not labelled_objects(cluster, name), 30)
