"""What goes wrong on the ``aci`` target is named: the memory limit, a bad certificate, an engine that restarts."""

from __future__ import annotations

import json
import time

import pytest

import nbdeploy
from nbdeploy.errors import DeploymentFailed, EngineUnavailable, InvalidSpec
from nbdeploy.targets.container_instance import AciDeploymentConfig

from .conftest import SCORE_PY, engine_script, inference

pytestmark = pytest.mark.remote

HOG = "global hog\n    hog = bytearray(900 * 2**20)\n    hog[::4096] = b'x' * len(hog[::4096])"


def test_memory_limit_is_an_oom_failure_with_the_limit(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    svc_config = AciDeploymentConfig(memory_gb=0.5, **engine_files)
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra=HOG)), svc_config,
                          workspace=workspace)
    with pytest.raises(DeploymentFailed) as info:
        svc.wait_for_deployment(timeout_sec=120)
    assert "OOM, limit 0.5 GB" in str(info.value)
    assert svc.state == "Failed"


def test_engine_with_another_ca_is_refused_in_one_line(workspace, services, model, engine_files, tmp_path):
    from nbdeploy.tls import WorkspaceCA

    other_ca = str(WorkspaceCA(tmp_path / "other").ensure())  # a CA that did not sign the engine's certificate
    config = AciDeploymentConfig(**{**engine_files, "tls_ca": other_ca})
    with pytest.raises(EngineUnavailable) as info:
        nbdeploy.deploy(services.name(), [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")), config,
                        workspace=workspace)
    message = str(info.value)
    assert "\n" not in message and "10.231.1.2:2376" in message and "not signed by the CA" in message
    assert nbdeploy.Webservice.list(workspace) == []


def test_bad_user_certificate_is_refused_before_anything_runs(engine_files, tmp_path):
    from nbdeploy.tls import WorkspaceCA

    ca = WorkspaceCA(tmp_path / "ca")
    one, other = ca.issue("one", ["10.231.1.2"]), ca.issue("other", ["10.231.1.2"])
    (tmp_path / "cert.pem").write_bytes(one.cert_pem)
    (tmp_path / "key.pem").write_bytes(other.key_pem)
    with pytest.raises(InvalidSpec, match="ssl_key_pem_file.*not the key of the certificate"):
        AciDeploymentConfig(ssl_enabled=True, ssl_cert_pem_file=str(tmp_path / "cert.pem"),
                            ssl_key_pem_file=str(tmp_path / "key.pem"), **engine_files)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidSpec, match="ssl_cert_pem_file.*not a PEM certificate"):
        AciDeploymentConfig(ssl_enabled=True, ssl_cert_pem_file=str(tmp_path / "junk.pem"),
                            ssl_key_pem_file=str(tmp_path / "key.pem"), **engine_files)


def test_service_survives_the_engine_restarting(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")),
                          AciDeploymentConfig(ssl_enabled=True, **engine_files), workspace=workspace)
    svc.wait_for_deployment()
    body = json.dumps({"data": [2]})
    assert svc.run(body) == [6]
    result = engine_script("restart")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 90
    while (status := svc.status()).state != "Healthy" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status.state == "Healthy", status
    assert svc.run(body) == [6]  # the same key and certificate: they live in the container, which came back
    assert svc._current()[0]["container"] in [c.id for c in services.remote.containers.list()]
