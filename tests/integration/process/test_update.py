"""update() and reload() on the process target: the old revision serves until the new one is proven."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

import nbdeploy
from nbdeploy.errors import UpdateFailed

from .conftest import write_script


class ScoringLoop:
    """Scores in a background thread and counts failures, as a client would during an update."""

    def __init__(self, svc: nbdeploy.Webservice, body: str) -> None:
        self.svc, self.body = svc, body
        self.ok, self.failures, self.answers = 0, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        client = nbdeploy.Webservice(self.svc.name, self.svc.workspace)
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.answers.add(json.dumps(client.run(self.body)))
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(exc))

    def __enter__(self) -> ScoringLoop:
        self._thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join(10)


def test_update_switches_without_failed_requests(workspace, model, score_py, tmp_path, diabetes):
    X, _ = diabetes
    svc = nbdeploy.deploy("rolling", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    port = svc.port
    v2 = write_script(tmp_path, """
        def init():
            pass
        def run(raw):
            return "v2"
    """, "v2.py")
    with ScoringLoop(svc, json.dumps({"data": X[:1]})) as loop:
        svc.update(inference_config=nbdeploy.InferenceConfig(str(v2)))
    assert loop.failures == [], loop.failures[:3]
    assert loop.ok > 20
    assert '"v2"' in loop.answers and len(loop.answers) == 2  # both revisions answered, nothing else
    assert svc.revision == 2 and svc.port == port
    assert svc.run("{}") == "v2"
    history = svc.revisions()
    assert [r["outcome"] for r in history] == ["replaced", "serving"]


def test_failed_update_keeps_the_old_revision_serving(workspace, model, score_py, tmp_path, diabetes):
    X, _ = diabetes
    svc = nbdeploy.deploy("guarded", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    old_pid = svc._current()[0]["pid"]
    broken = write_script(tmp_path, """
        def init():
            raise ValueError("cannot load the new model")
        def run(raw):
            return raw
    """, "broken.py")
    body = json.dumps({"data": X[:1]})
    with ScoringLoop(svc, body) as loop:
        with pytest.raises(UpdateFailed) as info:
            svc.update(inference_config=nbdeploy.InferenceConfig(str(broken)))
    assert "cannot load the new model" in info.value.logs
    assert "revision 1 keeps serving" in str(info.value)
    assert loop.failures == []
    assert svc.revision == 1 and svc._current()[0]["pid"] == old_pid
    assert svc.state == "Healthy" and len(svc.run(body)) == 1
    history = svc.revisions()
    assert [(r["revision"], r["outcome"]) for r in history] == [(1, "serving"), (2, "failed")]
    assert "init() failed" in history[1]["reason"] and "cannot load the new model" in history[1]["reason"]


def test_update_whose_smoke_request_fails_is_rolled_back(workspace, model, tmp_path):
    from nbdeploy.specs import ProcessDeploymentConfig

    ok = write_script(tmp_path, """
        def init():
            pass
        def run(raw):
            return {"ok": True}
    """, "ok.py")
    svc = nbdeploy.deploy("smoked", [model], nbdeploy.InferenceConfig(str(ok)), ProcessDeploymentConfig(smoke_input='{"x": 1}'), workspace=workspace)
    svc.wait_for_deployment()
    crashes = write_script(tmp_path, """
        def init():
            pass
        def run(raw):
            raise KeyError("x")
    """, "crashes.py")
    with pytest.raises(UpdateFailed, match="smoke request"):
        svc.update(inference_config=nbdeploy.InferenceConfig(str(crashes)))
    assert svc.run("{}") == {"ok": True}


def test_update_models_changes_what_is_served(workspace, model, score_py, tmp_path):
    svc = nbdeploy.deploy("models-up", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    model2 = nbdeploy.Model.register(model.download(str(tmp_path / "m2")), "diabetes", workspace=workspace)
    svc.update(models=[model2])
    assert svc.models == ["diabetes:2"]
    assert model.used_by() == [] and model2.used_by() == ["models-up"]


def test_reload_rereads_the_entry_script(workspace, model, tmp_path):
    script = write_script(tmp_path, """
        def init():
            pass
        def run(raw):
            return "before"
    """, "live.py")
    svc = nbdeploy.deploy("reloaded", [model], nbdeploy.InferenceConfig(str(script)), workspace=workspace)
    svc.wait_for_deployment()
    assert svc.run("{}") == "before"
    script.write_text(script.read_text().replace('"before"', '"after"'))
    svc.reload()
    assert svc.run("{}") == "after"


def test_scoring_uri_reaches_only_the_serving_revision_after_update(workspace, model, score_py, tmp_path):
    svc = nbdeploy.deploy("exclusive", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    v2 = write_script(tmp_path, "def init():\n    pass\ndef run(raw):\n    return 'v2'\n", "v2.py")
    svc.update(inference_config=nbdeploy.InferenceConfig(str(v2)))
    answers = {httpx.post(svc.scoring_uri, content="{}", trust_env=False).text for _ in range(30)}
    assert answers == {'"v2"'}


def test_interrupted_update_removes_the_new_revision_and_keeps_the_old(workspace, model, score_py, tmp_path):
    from nbdeploy.progress import LoggingSink

    class InterruptOnWait(LoggingSink):
        """Acts like a user pressing Ctrl-C (interrupting the kernel) while the new revision starts."""

        def state(self, service: str, state: str, reason: str = "") -> None:
            if "init()" in reason:
                raise KeyboardInterrupt

    svc = nbdeploy.deploy("interrupted", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    with pytest.raises(KeyboardInterrupt):
        svc.update(sink=InterruptOnWait())
    history = svc.revisions()
    assert [(r["revision"], r["outcome"]) for r in history] == [(1, "serving"), (2, "failed")]
    new_pid = svc._store.revision("interrupted", 2).handle["pid"]
    from .test_lifecycle import _pid_alive

    assert not _pid_alive(new_pid)
    assert svc.revision == 1 and svc.state == "Healthy"
