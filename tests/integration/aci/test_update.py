"""Updates on the ``aci`` target: blue/green on the remote engine's network with no failed request, and a
failed update that leaves the old revision serving."""

from __future__ import annotations

import json
import threading
import time

import pytest

import nbdeploy
from nbdeploy.errors import UpdateFailed
from nbdeploy.targets.container_instance import AciDeploymentConfig

from .conftest import SCORE_PY, inference

pytestmark = pytest.mark.remote


class ScoringLoop:
    """Scores through ``Webservice.run()`` (HTTPS, keys) in a thread for at most 240 s; counts failures."""

    def __init__(self, svc: nbdeploy.Webservice, body: str) -> None:
        self.svc, self.body = svc, body
        self.ok, self.failures, self.answers = 0, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        client = nbdeploy.Webservice(self.svc.name, self.svc.workspace)
        deadline = time.monotonic() + 240
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.answers.add(json.dumps(client.run(self.body)))
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(exc))

    def __enter__(self) -> ScoringLoop:
        self._thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self._stop.set()
        self._thread.join(10)


def test_model_update_is_blue_green_without_failed_requests(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")),
                          AciDeploymentConfig(ssl_enabled=True, **engine_files), workspace=workspace)
    svc.wait_for_deployment()
    uri, old = svc.scoring_uri, svc._current()[0]["container"]
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "model.json").write_text(json.dumps({"w": 5}))
    model2 = nbdeploy.Model.register(tmp_path / "m2" / "model.json", "m", workspace=workspace)
    body = json.dumps({"data": [1, 2]})
    with ScoringLoop(svc, body) as loop:
        svc.update(models=[model2])
    assert loop.failures == [], loop.failures[:3]
    assert loop.ok > 20 and loop.answers == {"[3, 6]", "[5, 10]"}  # both revisions answered, nothing else
    print(f"\n{loop.ok} requests over TLS during the update, 0 failed")
    assert svc.revision == 2 and svc.scoring_uri == uri and svc.run(body) == [5, 10]
    assert not services.remote.containers.list(all=True, filters={"id": old})


def test_failed_update_keeps_the_old_revision_serving(workspace, services, model, engine_files, tmp_path):
    name = services.name()
    svc = nbdeploy.deploy(name, [model], inference(tmp_path, SCORE_PY.format(init_extra="pass")),
                          AciDeploymentConfig(**engine_files), workspace=workspace)
    svc.wait_for_deployment()
    old = svc._current()[0]["container"]
    assert svc.scoring_uri.startswith("http://10.231.1.2:")
    broken = SCORE_PY.format(init_extra="raise ValueError('aci-test: cannot load the new model')")
    body = json.dumps({"data": [1]})
    with ScoringLoop(svc, body) as loop, pytest.raises(UpdateFailed) as info:
        svc.update(inference_config=inference(tmp_path, broken, "broken.py"))
    assert "aci-test: cannot load the new model" in str(info.value) + info.value.logs
    assert loop.failures == [], loop.failures[:3]
    assert loop.answers == {"[3]"}
    assert svc.revision == 1 and svc._current()[0]["container"] == old and svc.state == "Healthy"
    left = services.remote.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})
    assert [c.id for c in left] == [old]
