"""update() on the ``local`` target under load: the port is handed over without a failed request (host mode)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

import nbdeploy
from nbdeploy.errors import EngineUnavailable, UpdateFailed
from nbdeploy.service import Webservice
from nbdeploy.specs import LocalDeploymentConfig

from .docker_testapp import SCORE_PY, make_environment

pytestmark = pytest.mark.docker

V2 = "def init():\n    pass\n\ndef run(raw):\n    return 'v2'\n"


class ScoringLoop:
    """Scores through ``Webservice.run()`` in a background thread and counts failures, as a client would."""

    def __init__(self, svc: nbdeploy.Webservice, body: str) -> None:
        self.svc, self.body = svc, body
        self.ok, self.failures, self.answers = 0, [], set()
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        client = nbdeploy.Webservice(self.svc.name, self.svc.workspace)
        deadline = time.monotonic() + 240
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.answers.add(json.dumps(client.run(self.body)))
                self.ok += 1
                self.times.append(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(exc))

    @property
    def longest_gap_ms(self) -> float:
        """The longest time between two answers: what a client saw of the switch."""
        return max((b - a for a, b in zip(self.times, self.times[1:])), default=0.0) * 1000

    def __enter__(self) -> ScoringLoop:
        self._thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def workspace(tmp_path, engine):
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):
        svc.delete()


@pytest.fixture
def model(tmp_path, workspace):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text(json.dumps({"w": 3}))
    return nbdeploy.Model.register(tmp_path / "m" / "model.json", "m", workspace=workspace)


def script(tmp_path: Path, text: str, name: str) -> nbdeploy.InferenceConfig:
    (tmp_path / name).write_text(text)
    return nbdeploy.InferenceConfig(str(tmp_path / name), environment=make_environment())


def test_update_switches_without_failed_requests(workspace, resources, model, tmp_path):
    name = resources.service()
    svc = nbdeploy.deploy(name, [model], script(tmp_path, SCORE_PY.format(init_extra="pass"), "score.py"),
                          LocalDeploymentConfig(), workspace=workspace)
    svc.wait_for_deployment()
    port, old_container = svc.port, svc._current()[0]["container"]
    assert svc._current()[0]["network"] == "host"
    body = json.dumps({"data": [1, 2]})
    with ScoringLoop(svc, body) as loop:
        svc.update(inference_config=script(tmp_path, V2, "v2.py"))
    assert loop.failures == [], loop.failures[:3]
    assert loop.ok > 20
    assert loop.answers == {"[3, 6]", '"v2"'}  # both revisions answered, nothing else
    print(f"\n{loop.ok} requests during the update, 0 failed, longest gap between answers {loop.longest_gap_ms:.0f} ms")
    assert svc.revision == 2 and svc.port == port
    assert svc.run(body) == "v2" and svc.state == "Healthy"
    assert [r["outcome"] for r in svc.revisions()] == ["replaced", "serving"]
    assert not resources.client.containers.list(all=True, filters={"id": old_container})


def test_failed_update_keeps_the_old_container_serving(workspace, resources, model, tmp_path):
    name = resources.service()
    svc = nbdeploy.deploy(name, [model], script(tmp_path, SCORE_PY.format(init_extra="pass"), "score.py"),
                          LocalDeploymentConfig(restart_policy="on-failure"), workspace=workspace)
    svc.wait_for_deployment()
    old_container = svc._current()[0]["container"]
    broken = SCORE_PY.format(init_extra="raise ValueError('nbdeploy-test: cannot load the new model')")
    body = json.dumps({"data": [1]})
    with ScoringLoop(svc, body) as loop, pytest.raises(UpdateFailed) as info:
        svc.update(inference_config=script(tmp_path, broken, "broken.py"))
    assert "nbdeploy-test: cannot load the new model" in info.value.logs
    assert "revision 1 keeps serving" in str(info.value)
    assert loop.failures == [], loop.failures[:3]
    assert loop.ok > 5 and loop.answers == {"[3]"}
    assert svc.revision == 1 and svc._current()[0]["container"] == old_container
    assert svc.state == "Healthy" and svc.run(body) == [3]
    assert [(r["revision"], r["outcome"]) for r in svc.revisions()] == [(1, "serving"), (2, "failed")]
    # the failed candidate is gone; only the serving container is left
    left = resources.client.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})
    assert [c.id for c in left] == [old_container]


def test_engine_not_running_says_how_to_start_it(tmp_path, monkeypatch):
    """DOCKER_HOST names a unix socket where no daemon listens: the error says how to start one."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # a socket file, nobody listening: connection refused
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        ws = nbdeploy.Workspace.create(tmp_path / "ws")
        (tmp_path / "model.json").write_text(json.dumps({"w": 3}))
        model = nbdeploy.Model.register(tmp_path / "model.json", "m", workspace=ws)
        (tmp_path / "score.py").write_text(SCORE_PY.format(init_extra="pass"))
        with pytest.raises(EngineUnavailable) as info:
            nbdeploy.deploy("no-engine", [model], nbdeploy.InferenceConfig(str(tmp_path / "score.py")),
                            LocalDeploymentConfig(), workspace=ws)
    message = str(info.value)
    assert str(path) in message
    assert "docker.sh up" in message and "dockerd" in message and "--target process" in message
    assert Webservice.list(ws) == []  # nothing half-done
