"""The ``local`` target against the real engine: states, logs, limits, bad input, update, delete."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from nbdeploy.errors import Conflict, DeploymentFailed
from nbdeploy.specs import LocalDeploymentConfig
from nbdeploy.targets.base import RevisionSpec, State, get_target
from nbdeploy.workspace import Workspace

from .docker_testapp import make_app, make_bundle, make_environment

pytestmark = pytest.mark.docker


@pytest.fixture
def target(engine, tmp_path):
    return get_target("local", Workspace.create(tmp_path / "ws"))


def wait(target, handle, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        status = target.status(handle)
        if status.state.is_final or status.state == State.UNHEALTHY or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def revision(service, app: Path, n=1, **config):
    return RevisionSpec(service, n, make_bundle(app), LocalDeploymentConfig(**config), make_environment())


def score(uri, data=(1, 2)):
    return httpx.post(uri, json={"data": list(data)}, timeout=10).json()


def test_deploy_is_healthy_scores_and_is_removed(target, resources, tmp_path):
    service = resources.service()
    app = make_app(tmp_path / "app", weight=2.0)
    handle = target.start(revision(service, app, cpu_cores=0.5, memory_gb=0.5))
    status = wait(target, handle)
    assert status.state == State.HEALTHY, status
    assert score(target.scoring_uri(handle)) == [2.0, 4.0]
    container = target.client().containers.get(handle["container"])
    host_config = container.attrs["HostConfig"]
    assert host_config["NanoCpus"] == 500_000_000 and host_config["Memory"] == 512 * 2**20
    bindings = container.attrs["NetworkSettings"]["Ports"]["5001/tcp"]
    assert bindings[0]["HostIp"] == "127.0.0.1"
    assert container.labels["nbdeploy.service"] == service and container.labels["nbdeploy.revision"] == "1"
    assert container.exec_run(["sh", "-c", "id -u; echo $NBDEPLOY_TEST_VAR"]).output.decode().split() == ["1000", "42"]
    assert "init" in target.logs(handle).lower()
    target.stop(handle)
    target.stop(handle)  # idempotent
    assert not target.client().containers.list(all=True, filters={"label": f"nbdeploy.service={service}"})


def test_key_auth_and_key_rotation(target, resources, tmp_path):
    spec = revision(resources.service(), make_app(tmp_path / "app"), auth_enabled=True)
    spec.keys = ("primary-key-1", "secondary-key-1")
    handle = target.start(spec)
    assert wait(target, handle).state == State.HEALTHY
    uri = target.scoring_uri(handle)
    assert httpx.post(uri, json={"data": [1]}).status_code == 401
    ok = httpx.post(uri, json={"data": [1]}, headers={"Authorization": "Bearer primary-key-1"})
    assert ok.status_code == 200, ok.text
    target.update_keys(handle, ("primary-key-2", "secondary-key-1"))
    deadline = time.monotonic() + 10
    while httpx.post(uri, json={"data": [1]}, headers={"Authorization": "Bearer primary-key-2"}).status_code != 200:
        assert time.monotonic() < deadline, "the server did not pick up the new keys"
        time.sleep(0.2)
    target.stop(handle)


def test_port_in_use_is_a_conflict(target, resources, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(Conflict, match=str(port)):
            target.start(revision(resources.service(), make_app(tmp_path / "app"), port=port))


def test_container_that_exits_at_once_is_failed_with_the_traceback(target, resources, tmp_path):
    app = make_app(tmp_path / "app", init_extra="raise RuntimeError('nbdeploy-test: model file is corrupt')")
    handle = target.start(revision(resources.service(), app))
    status = wait(target, handle)
    assert status.state == State.FAILED, status
    assert "exit" in status.reason
    assert "nbdeploy-test: model file is corrupt" in status.evidence


def test_container_killed_for_memory_is_failed_with_oom(target, resources, tmp_path):
    app = make_app(tmp_path / "app", init_extra="global hog; hog = bytearray(400 * 2**20)")
    handle = target.start(revision(resources.service(), app, memory_gb=0.125))
    status = wait(target, handle)
    assert status.state == State.FAILED, status
    assert "memory" in status.reason.lower() or "oom" in status.reason.lower(), status


def test_update_moves_the_public_port_only_when_healthy(target, resources, tmp_path):
    service = resources.service()
    old = target.start(revision(service, make_app(tmp_path / "v1", weight=1.0)))
    assert wait(target, old).state == State.HEALTHY
    public = target.scoring_uri(old)

    new = target.start(revision(service, make_app(tmp_path / "v2", weight=10.0), n=2), previous=old)
    assert wait(target, new).state == State.HEALTHY
    assert new["port"] != old["port"] and target.scoring_uri(new) == public
    assert score(target.smoke_uri(new) + "/score") == [10.0, 20.0]
    assert score(public) == [1.0, 2.0]  # still the old revision

    new = target.promote(new, old)
    target.retire(old, new)
    assert wait(target, new).state == State.HEALTHY
    assert score(public) == [10.0, 20.0]
    assert target.status(old).state == State.FAILED  # gone

    # a revision that fails on the public port rolls back to the serving one
    broken = target.start(revision(service, make_app(tmp_path / "v3", init_extra="pass"), n=3), previous=new)
    assert wait(target, broken).state == State.HEALTHY
    broken["image"] = "nbdeploy-test/absent:0"  # cannot run on the public port
    with pytest.raises(DeploymentFailed, match="could not start"):
        target.promote(broken, new)
    target.abort(broken, new)
    assert wait(target, new).state == State.HEALTHY and score(public) == [10.0, 20.0]
    target.stop(new)
