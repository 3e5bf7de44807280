"""Hostile-user probes on the ``local`` target against the real Docker engine (issue 11, items 18, 19, 22, 25):
two updates at once, a CLI killed during the new container's init(), ``docker kill``, an update that is
given only a new entry script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

import nbdeploy
from nbdeploy.service import Webservice
from nbdeploy.specs import LocalDeploymentConfig

from .docker_testapp import make_environment

pytestmark = pytest.mark.docker

REVISION = ("import os\ndef init():\n    pass\n"
            "def run(raw):\n    return 'revision ' + os.environ['SERVICE_VERSION'] + ' var ' + os.environ.get('NBDEPLOY_TEST_VAR', '-')\n")
SLOW_INIT = "import time\ndef init():\n    time.sleep(300)\ndef run(raw):\n    return 'slow'\n"


@pytest.fixture
def workspace(tmp_path, engine):
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):
        svc.delete()


def cli(ws: nbdeploy.Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nbdeploy", "--workspace", str(ws.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def deploy(ws, tmp_path, name: str) -> Webservice:
    (tmp_path / "rev.py").write_text(REVISION)
    ic = nbdeploy.InferenceConfig(str(tmp_path / "rev.py"), environment=make_environment())
    svc = nbdeploy.deploy(name, [], ic, LocalDeploymentConfig(), workspace=ws)
    svc.wait_for_deployment()
    return svc


def containers(resources, name: str, running_only: bool = True) -> dict[str, str]:
    """container id -> revision label, of service ``name`` (running ones unless told otherwise)."""
    found = resources.client.containers.list(all=not running_only, filters={"label": f"nbdeploy.service={name}"})
    return {c.id: c.labels.get("nbdeploy.revision") for c in found}


def answers(port: int, n: int = 30) -> set[str]:
    seen = set()
    for _ in range(n):
        try:
            seen.add(httpx.post(f"http://127.0.0.1:{port}/score", content="{}", timeout=10,
                                headers={"Connection": "close"}).text)
        except httpx.TransportError as exc:
            seen.add(f"error: {type(exc).__name__}")
    return seen


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_updates_at_once_leave_one_container_serving(workspace, resources, tmp_path):
    name = resources.service()
    svc = deploy(workspace, tmp_path, name)
    port = svc.port
    scripts = []
    for i in (2, 3):
        (tmp_path / f"r{i}.py").write_text(REVISION + f"# variant {i}\n")
        scripts.append(tmp_path / f"r{i}.py")
    procs = [cli(workspace, "service", "update", name, "--entry-script", str(s)) for s in scripts]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    print("\n----\n".join(outputs))
    assert [p.returncode for p in procs] == [0, 0]
    assert "Traceback" not in "".join(outputs) and "409 Client Error" not in "".join(outputs)
    svc.refresh()
    assert svc.revision == 3 and svc.port == port
    assert list(containers(resources, name).values()) == ["3"]
    # the environment was kept by both updates (item 25: only --entry-script was given)
    assert answers(port) == {'"revision 3 var 42"'}


def test_cli_killed_during_init_leaves_no_container_after_the_next_operation(workspace, resources, tmp_path):
    name = resources.service()
    svc = deploy(workspace, tmp_path, name)
    port = svc.port
    (tmp_path / "slow.py").write_text(SLOW_INIT)
    proc = cli(workspace, "service", "update", name, "--entry-script", str(tmp_path / "slow.py"))
    wait_until(lambda: "2" in containers(resources, name).values(), 600, "revision 2's container")
    time.sleep(1)  # inside init() now
    proc.kill()
    proc.wait()
    assert sorted(containers(resources, name).values()) == ["1", "2"]  # the probe: it outlived its CLI
    svc.reload()
    assert list(containers(resources, name, running_only=False).values()) == ["3"]
    outcomes = {r["revision"]: r["outcome"] for r in svc.refresh().revisions()}
    assert outcomes == {1: "replaced", 2: "aborted", 3: "serving"}
    assert answers(port, 10) == {'"revision 3 var 42"'}


def test_docker_kill_is_reported_with_its_signal_and_an_update_keeps_the_port(workspace, resources, tmp_path):
    name = resources.service()
    svc = deploy(workspace, tmp_path, name)
    port = svc.port
    resources.client.containers.get(svc._current()[0]["container"]).kill()
    status = svc.status()
    assert status.state == "Failed"
    assert "SIGKILL" in status.reason and "137" in status.reason, status.reason
    proc = cli(workspace, "service", "show", name)
    out, _ = proc.communicate(timeout=120)
    assert "SIGKILL" in out, out
    svc.reload()
    assert svc.port == port and svc.refresh().state == "Healthy"
    assert answers(port, 5) == {'"revision 2 var 42"'}
    assert list(containers(resources, name, running_only=False).values()) == ["2"]
    assert json.loads(json.dumps(svc.serialize()))["port"] == port
