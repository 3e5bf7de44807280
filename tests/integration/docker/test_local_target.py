"""The ``local`` target against the real engine: states, logs, limits, bad input, update, delete.

Host network mode is the default on Linux; the bridge mode (a published port) has its own tests.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from nbdeploy.errors import Conflict, DeploymentFailed, UpdateFailed
from nbdeploy.specs import LocalDeploymentConfig
from nbdeploy.builders.base import BuildRequest, get_builder
from nbdeploy.targets.base import RevisionSpec, State
from nbdeploy.targets.registry import get_target
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


def start(target, spec, previous=None):
    """Build the revision's image (the service's build step), then start it."""
    request = BuildRequest(spec.service, spec.revision, spec.bundle, spec.config, spec.environment)
    spec.artifact = get_builder(target.artifact_kind(request), target.workspace).build(request)
    return target.start(spec, previous=previous)


def score(uri, data=(1, 2)):
    return httpx.post(uri, json={"data": list(data)}, timeout=10).json()


def test_deploy_is_healthy_scores_and_is_removed(target, resources, tmp_path):
    service = resources.service()
    app = make_app(tmp_path / "app", weight=2.0)
    handle = start(target, revision(service, app, cpu_cores=0.5, memory_gb=0.5, restart_policy="on-failure"))
    status = wait(target, handle)
    assert status.state == State.HEALTHY, status
    assert score(target.scoring_uri(handle)) == [2.0, 4.0]
    container = target.client().containers.get(handle["container"])
    host_config = container.attrs["HostConfig"]
    assert host_config["NanoCpus"] == 500_000_000 and host_config["Memory"] == 512 * 2**20
    assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host_config["NetworkMode"] == "host" and handle["network"] == "host"
    assert target.scoring_uri(handle) == f"http://127.0.0.1:{handle['port']}/score"
    assert container.labels["nbdeploy.service"] == service and container.labels["nbdeploy.revision"] == "1"
    assert container.labels["nbdeploy.managed"] == "true" and container.labels["nbdeploy.models"] == "m:1"
    assert container.exec_run(["sh", "-c", "id -u; echo $NBDEPLOY_TEST_VAR"]).output.decode().split() == ["1000", "42"]
    # the image's health check probes the admin port (on the host network, 5001 may be anybody's)
    assert f"127.0.0.1:{handle['admin_port']}/health/ready" in " ".join(container.attrs["Config"]["Healthcheck"]["Test"])
    assert json.loads(Path(handle["status_file"]).read_text())["state"] == "serving"
    assert "init" in target.logs(handle).lower()
    target.stop(handle)
    target.stop(handle)  # idempotent
    assert not target.client().containers.list(all=True, filters={"label": f"nbdeploy.service={service}"})
    assert not os.path.exists(handle["state_dir"])


def test_bridge_mode_publishes_the_port(target, resources, tmp_path):
    handle = start(target, revision(resources.service(), make_app(tmp_path / "app"), network_mode="bridge"))
    assert wait(target, handle).state == State.HEALTHY
    assert score(target.scoring_uri(handle)) == [2.0, 4.0]
    container = target.client().containers.get(handle["container"])
    assert container.attrs["HostConfig"]["NetworkMode"] != "host"
    bindings = container.attrs["NetworkSettings"]["Ports"]["5001/tcp"]
    assert bindings[0]["HostIp"] == "127.0.0.1" and int(bindings[0]["HostPort"]) == handle["port"]
    target.stop(handle)


def test_key_auth_and_key_rotation(target, resources, tmp_path):
    spec = revision(resources.service(), make_app(tmp_path / "app"), auth_enabled=True)
    spec.keys = ("primary-key-1", "secondary-key-1")
    handle = start(target, spec)
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


@pytest.mark.parametrize("network_mode", ["host", "bridge"])
def test_port_in_use_is_a_conflict(target, resources, tmp_path, network_mode):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        service = resources.service()
        with pytest.raises(Conflict, match=str(port)):
            start(target, revision(service, make_app(tmp_path / "app"), port=port, network_mode=network_mode))
        assert not target.client().containers.list(all=True, filters={"label": f"nbdeploy.service={service}"})


def test_container_that_exits_at_once_is_failed_with_the_traceback(target, resources, tmp_path):
    app = make_app(tmp_path / "app", init_extra="raise RuntimeError('nbdeploy-test: model file is corrupt')")
    handle = start(target, revision(resources.service(), app))
    status = wait(target, handle)
    assert status.state == State.FAILED, status
    assert "init() failed" in status.reason and "code 3" in status.reason
    assert "nbdeploy-test: model file is corrupt" in status.evidence


def test_container_killed_for_memory_is_failed_with_oom(target, resources, tmp_path):
    app = make_app(tmp_path / "app", init_extra="global hog; hog = bytearray(400 * 2**20)")
    handle = start(target, revision(resources.service(), app, memory_gb=0.125))
    status = wait(target, handle)
    assert status.state == State.FAILED, status
    assert "memory" in status.reason.lower() or "oom" in status.reason.lower(), status


def test_host_update_hands_the_port_over(target, resources, tmp_path):
    """SIGUSR1 adds the new container to the public port beside the old one; retire drains the old one."""
    service = resources.service()
    old = start(target, revision(service, make_app(tmp_path / "v1", weight=1.0), restart_policy="always"))
    assert wait(target, old).state == State.HEALTHY
    public = target.scoring_uri(old)

    new = start(target, revision(service, make_app(tmp_path / "v2", weight=10.0), n=2, restart_policy="always"),
                       previous=old)
    assert new["held"] and new["port"] == old["port"] and new["admin_port"] != old["admin_port"]
    assert wait(target, new).state == State.HEALTHY
    container = target.client().containers.get(new["container"])
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"  # a failing candidate fails the update
    assert score(target.private_endpoint(new).scoring_uri) == [10.0, 20.0]
    assert {tuple(score(public)) for _ in range(10)} == {(1.0, 2.0)}  # held: only the old one is public

    new = target.promote(new, old)
    assert not new["held"] and target.scoring_uri(new) == public
    container.reload()
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    target.retire(old, new)
    assert target.status(old).state == State.FAILED  # gone
    assert wait(target, new).state == State.HEALTHY
    assert {tuple(score(public)) for _ in range(10)} == {(10.0, 20.0)}

    # restarted by its policy, a promoted container comes back on the public port, not held
    container.exec_run(["python", "-c", "import os, signal; os.kill(1, signal.SIGTERM)"])
    deadline = time.monotonic() + 60
    while True:
        container.reload()
        if container.attrs["RestartCount"] >= 1 and target.status(new).state == State.HEALTHY:
            break
        assert time.monotonic() < deadline, target.logs(new, 30)
        time.sleep(0.2)
    assert score(public) == [10.0, 20.0]
    target.stop(new)


def test_host_update_whose_candidate_fails_keeps_the_old_one(target, resources, tmp_path):
    service = resources.service()
    old = start(target, revision(service, make_app(tmp_path / "v1", weight=1.0)))
    assert wait(target, old).state == State.HEALTHY
    app = make_app(tmp_path / "v2", init_extra="raise RuntimeError('nbdeploy-test: broken v2')")
    new = start(target, revision(service, app, n=2, restart_policy="always"), previous=old)
    status = wait(target, new)
    assert status.state == State.FAILED and "nbdeploy-test: broken v2" in status.evidence, status
    target.abort(new, old)
    assert wait(target, old).state == State.HEALTHY and score(target.scoring_uri(old)) == [1.0, 2.0]

    # a candidate that cannot take the public port is removed; the old one keeps serving
    new = start(target, revision(service, make_app(tmp_path / "v3"), n=3), previous=old)
    assert wait(target, new).state == State.HEALTHY
    target.client().containers.get(new["container"]).kill()
    with pytest.raises(UpdateFailed, match="public port"):
        target.promote(new, old)
    assert not target.client().containers.list(all=True, filters={"id": new["container"]})
    assert score(target.scoring_uri(old)) == [1.0, 2.0]
    target.stop(old)


def test_bridge_update_moves_the_public_port_only_when_healthy(target, resources, tmp_path):
    service = resources.service()
    old = start(target, revision(service, make_app(tmp_path / "v1", weight=1.0), network_mode="bridge"))
    assert wait(target, old).state == State.HEALTHY
    public = target.scoring_uri(old)

    new = start(target, revision(service, make_app(tmp_path / "v2", weight=10.0), n=2, network_mode="bridge"), previous=old)
    assert wait(target, new).state == State.HEALTHY
    assert new["port"] != old["port"] and target.scoring_uri(new) == public
    assert score(target.private_endpoint(new).scoring_uri) == [10.0, 20.0]
    assert score(public) == [1.0, 2.0]  # still the old revision

    new = target.promote(new, old)
    target.retire(old, new)
    assert wait(target, new).state == State.HEALTHY
    assert score(public) == [10.0, 20.0]
    assert target.status(old).state == State.FAILED  # gone

    # a revision that fails on the public port rolls back to the serving one
    broken = start(target, revision(service, make_app(tmp_path / "v3", init_extra="pass"), n=3, network_mode="bridge"), previous=new)
    assert wait(target, broken).state == State.HEALTHY
    broken["image"] = "nbdeploy-test/absent:0"  # cannot run on the public port
    with pytest.raises(DeploymentFailed, match="could not start"):
        target.promote(broken, new)
    target.abort(broken, new)
    assert wait(target, new).state == State.HEALTHY and score(public) == [10.0, 20.0]
    target.stop(new)


@pytest.mark.parametrize("modes", [("bridge", "host"), ("host", "bridge")])
def test_update_across_network_modes_keeps_the_port(target, resources, tmp_path, modes):
    """A bridge container (say, from an older nbdeploy) updated to host mode and back: the old one frees the port
    first (a short outage), then the new one serves it."""
    service = resources.service()
    old = start(target, revision(service, make_app(tmp_path / "v1", weight=1.0), network_mode=modes[0]))
    assert wait(target, old).state == State.HEALTHY
    public = target.scoring_uri(old)
    new = start(target, revision(service, make_app(tmp_path / "v2", weight=10.0), n=2, network_mode=modes[1]), previous=old)
    assert wait(target, new).state == State.HEALTHY
    assert score(public) == [1.0, 2.0]
    new = target.promote(new, old)
    target.retire(old, new)
    assert wait(target, new).state == State.HEALTHY
    assert target.scoring_uri(new) == public and score(public) == [10.0, 20.0]
    target.stop(new)
