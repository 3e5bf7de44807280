"""The Webservice API on the ``local`` target, end to end: deploy, score, update, delete."""

from __future__ import annotations

import json

import pytest

import nbdeploy
from nbdeploy.service import Webservice
from nbdeploy.specs import LocalDeploymentConfig

from .docker_testapp import SCORE_PY, make_environment

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path, engine):
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):
        svc.delete()


def test_deploy_update_delete_on_local(workspace, resources, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text(json.dumps({"w": 3}))
    model = nbdeploy.Model.register(tmp_path / "m" / "model.json", "m", workspace=workspace)
    script = tmp_path / "score.py"
    script.write_text(SCORE_PY.format(init_extra="pass"))
    config = nbdeploy.InferenceConfig(str(script), environment=make_environment())
    name = resources.service()

    svc = nbdeploy.deploy(name, [model], config, LocalDeploymentConfig(), workspace=workspace)
    assert str(svc.wait_for_deployment().state) == "Healthy"
    assert svc.run(json.dumps({"data": [1, 2]})) == [3, 6]
    assert svc.image and svc.image.startswith(f"nbdeploy/{name}:")
    assert "init" in svc.get_logs().lower()

    (tmp_path / "m" / "model.json").write_text(json.dumps({"w": 5}))
    model2 = nbdeploy.Model.register(tmp_path / "m" / "model.json", "m", workspace=workspace)
    svc.update(models=[model2])
    assert str(svc.wait_for_deployment().state) == "Healthy"
    assert svc.run(json.dumps({"data": [1]})) == [5]

    images = {svc.image, *(r.handle["image"] for r in svc._store.revisions(name) if r.handle)}
    svc.delete(delete_image=True)
    assert not resources.client.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})
    assert not [t for image in resources.client.images.list(name=f"nbdeploy/{name}") for t in image.tags]
    assert len(images) == 2  # one image per revision, both removed
