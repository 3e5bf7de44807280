"""The ``aci`` target against a real remote Docker engine over TLS: deploy, score with keys over HTTPS,
states, logs, delete; nothing left behind on either engine."""

from __future__ import annotations

import json
import time

import httpx
import pytest

import nbdeploy
from nbdeploy.targets.container_instance import AciDeploymentConfig

from .conftest import SCORE_PY, inference

pytestmark = pytest.mark.remote


def test_deploy_scores_over_tls_with_keys_and_deletes_cleanly(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    config = AciDeploymentConfig(cpu_cores=1, memory_gb=1, ssl_enabled=True, **engine_files)
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")), config,
                          workspace=workspace)
    assert str(svc.wait_for_deployment().state) == "Healthy"
    uri = svc.scoring_uri
    assert uri.startswith("https://10.231.1.2:") and uri.endswith("/score"), uri  # the engine's address
    assert svc.run(json.dumps({"data": [1, 2]})) == [3, 6]
    endpoint = svc._target().endpoint(svc._current()[0])
    ca = endpoint.verify
    assert isinstance(ca, str) and ca.startswith(str(workspace.path))
    # the key is required, and checked against the certificate issued by the workspace CA
    assert httpx.post(uri, content="{}", verify=ca, trust_env=False).status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.post(uri, content="{}", trust_env=False)  # system CAs do not know the workspace CA
    # limits and labels on the remote container; keys not in its environment
    container = services.remote.containers.get(svc._current()[0]["container"])
    host_config = container.attrs["HostConfig"]
    assert host_config["Memory"] == 1024 * 2**20 and host_config["NanoCpus"] == 10**9
    assert host_config["RestartPolicy"]["Name"] == "always"
    primary, secondary = svc.get_keys()
    env = " ".join(container.attrs["Config"]["Env"])
    assert primary not in env and secondary not in env
    assert "ready for serving traffic" in svc.get_logs()
    # a new primary key reaches the running container (written into it, not restarted)
    svc.regen_key("primary")
    new_primary = svc.get_keys()[0]
    assert new_primary != primary and container.attrs["State"]["StartedAt"] == \
        services.remote.containers.get(container.id).attrs["State"]["StartedAt"]
    time.sleep(1.1)  # the server re-reads the keys file at most once a second
    headers = {"Authorization": f"Bearer {new_primary}"}
    assert httpx.post(uri, content=json.dumps({"data": [1]}), headers=headers, verify=ca, trust_env=False).json() == [3]
    old = httpx.post(uri, content="{}", headers={"Authorization": f"Bearer {primary}"}, verify=ca, trust_env=False)
    assert old.status_code == 401

    svc.delete(delete_image=True)
    assert services.leftovers(name) == []


def test_delete_keeps_the_shipped_image_unless_asked(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    config = AciDeploymentConfig(cpu_cores=1, memory_gb=1, **engine_files)
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")), config,
                          workspace=workspace)
    svc.wait_for_deployment()
    image = svc._current()[0]["image"]
    svc.delete()
    assert not services.remote.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})
    assert services.remote.images.get(image)  # a redeploy ships nothing; delete(delete_image=True) removes it
    again = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")), config,
                            workspace=workspace)
    again.wait_for_deployment()
    again.delete(delete_image=True)
    assert services.leftovers(name) == []
