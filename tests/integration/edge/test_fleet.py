"""The edge target on three real device engines (tests/engines/edge.sh): a device offline mid-deploy, reconcile,
a failing update rolled back on every device, delete."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from nbdeploy.errors import UpdateFailed
from nbdeploy.service import Webservice, deploy
from nbdeploy.targets.edge import EdgeDeploymentConfig

from .conftest import ROOT, edge

pytestmark = [pytest.mark.remote, pytest.mark.slow]


class OfflineMidDeploy:
    """A progress sink that takes a device offline when the rollout reaches wave 2, and keeps every line."""

    def __init__(self, device: str) -> None:
        self.device, self.lines, self.cut = device, [], False

    def state(self, service: str, state: str, reason: str = "") -> None:
        self.lines.append(f"[{state}] {reason}")

    def line(self, service: str, text: str) -> None:
        self.lines.append(text)
        if text.startswith("wave 2/") and not self.cut:
            edge("offline", self.device)
            self.cut = True

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        self.lines.append(f"finish {state} {reason}")


def _answers(fleet, name: str, service: str, port: int, body: dict) -> object:
    import httpx

    host = re.search(r"tcp://([^:]+):", fleet.client(name).api.base_url.replace("https://", "tcp://")).group(1)
    return httpx.post(f"http://{host}:{port}/score", json=body, timeout=10, trust_env=False).json()


def test_offline_device_reconcile_and_failing_update(fleet) -> None:
    service = fleet.service_name()
    ic, model = fleet.app(weight=2.0)
    config = EdgeDeploymentConfig(device_selector="site=plant-3", policy="at least 2", canary=1, max_retries=1,
                                  retry_backoff_s=0.5, device_timeout_s=60)
    sink = OfflineMidDeploy("edge3")
    svc = deploy(service, [model], ic, config, workspace=fleet.ws, sink=sink)
    assert sink.cut, sink.lines
    status = svc.wait_for_deployment(timeout_sec=120)

    # the two online devices are Healthy, the service meets "at least 2" and names the offline one
    assert str(status.state) == "Healthy"
    assert re.fullmatch(r"2/3 devices Healthy; edge3 Offline since \d\d:\d\d UTC", status.reason), status.reason
    states = {d["name"]: d["state"] for d in status.details["devices"]}
    assert states == {"edge1": "Healthy", "edge2": "Healthy", "edge3": "Offline"}
    assert svc.run({"data": [1, 2]}) == [2.0, 4.0]
    records = {d["name"]: d for d in status.details["devices"]}
    for name in ("edge1", "edge2"):
        assert _answers(fleet, name, service, records[name]["port"], {"data": [3]}) == [6.0]

    # back online: Pending (nothing runs there yet) until reconcile converges it, with no daemon on the device
    edge("online", "edge3")
    assert {d["name"]: d["state"] for d in svc.status().details["devices"]}["edge3"] == "Pending"
    cli = subprocess.run([sys.executable, "-m", "nbdeploy", "-w", str(fleet.ws.path), "service", "reconcile", service],
                         capture_output=True, text=True, timeout=180, cwd=ROOT,
                         check=False)
    assert cli.returncode == 0, cli.stderr
    assert f"{service}: Healthy" in cli.stdout
    status = Webservice(service, fleet.ws).status()
    assert str(status.state) == "Healthy" and status.reason == ""
    ports = {d["name"]: d["port"] for d in status.details["devices"]}
    port3 = ports["edge3"]
    assert _answers(fleet, "edge3", service, port3, {"data": [1]}) == [2.0]

    # a failing update: init() raises on the canary, is retried once (visible backoff), rolled back; the other
    # devices are never touched; every device still serves revision 1
    bad_ic, _ = fleet.app(weight=5.0, init_extra="raise RuntimeError('model file is corrupt')", name="bad")
    lines: list[str] = []

    class Lines(OfflineMidDeploy):
        def line(self, service: str, text: str) -> None:
            lines.append(text)

    with pytest.raises(UpdateFailed) as failed:
        Webservice(service, fleet.ws).update(inference_config=bad_ic, sink=Lines("none"))
    assert "keeps serving" in str(failed.value)
    assert any(re.search(r"edge1: attempt 1 failed \(the container exited with code \d+\); retry 1/1 in 0 s", l)
               for l in lines), lines
    assert any("rolled back to revision 1" in l for l in lines), lines
    for name in fleet.names:
        assert fleet.containers(name, service) == {"1": "running"}, name
        port = {d["name"]: d["port"] for d in status.details["devices"]}[name]
        assert _answers(fleet, name, service, port, {"data": [1]}) == [2.0]
    svc = Webservice(service, fleet.ws)
    assert svc.revision == 1 and str(svc.status().state) == "Healthy"
    history = svc.revisions()
    assert history[-1]["revision"] == 2 and history[-1]["outcome"] == "failed", history[-1]
    # the port each device publishes is the same as before the update (clients on the device keep it)
    assert {d["name"]: d["port"] for d in svc.status().details["devices"]} == ports

    svc.delete()
    for name in fleet.names:
        assert fleet.containers(name, service) == {}


def test_update_with_a_device_offline_keeps_its_old_module_until_reconcile(fleet) -> None:
    """A successful update while edge3 is offline: edge1/edge2 move to revision 2 (their revision 1 retired),
    edge3 keeps serving revision 1 until it is back and reconciled, which then retires it there too."""
    service = fleet.service_name()
    ic, model = fleet.app(weight=2.0)
    config = EdgeDeploymentConfig(devices=fleet.names, policy="at least 2", canary=1, device_timeout_s=60)
    svc = deploy(service, [model], ic, config, workspace=fleet.ws)
    assert svc.wait_for_deployment(timeout_sec=120).details["healthy"] == 3

    edge("offline", "edge3")
    ic2, model2 = fleet.app(weight=7.0, name="v2")
    svc = Webservice(service, fleet.ws).update(models=[model2], inference_config=ic2)
    status = svc.status()
    assert svc.revision == 2 and str(status.state) == "Healthy"
    assert re.fullmatch(r"2/3 devices Healthy; edge3 Offline since \d\d:\d\d UTC", status.reason), status.reason
    assert fleet.containers("edge1", service) == {"2": "running"}
    assert fleet.containers("edge2", service) == {"2": "running"}

    edge("online", "edge3")
    assert fleet.containers("edge3", service) == {"1": "running"}  # its last-known-good kept serving
    # which device runs which revision: visible in the status details and in `nbdeploy edge status`
    devices = {d["name"]: d for d in svc.status().details["devices"]}
    assert (devices["edge3"]["state"], devices["edge3"]["runs"]) == ("Pending", 1)
    assert devices["edge1"]["runs"] == devices["edge2"]["runs"] == 2
    shown = subprocess.run([sys.executable, "-m", "nbdeploy", "-w", str(fleet.ws.path), "edge", "status", service],
                           capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:] if line.startswith("edge")}
    assert rows["edge3"][1:3] == ["Pending", "1"] and rows["edge1"][1:3] == ["Healthy", "2"], shown.stdout
    status = svc.reconcile()
    assert str(status.state) == "Healthy" and status.details["healthy"] == 3
    assert fleet.containers("edge3", service) == {"2": "running"}
    port = {d["name"]: d["port"] for d in status.details["devices"]}["edge3"]
    assert _answers(fleet, "edge3", service, port, {"data": [1]}) == [7.0]
