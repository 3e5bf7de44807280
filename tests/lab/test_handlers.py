"""The side panel's REST API and event stream against a real Jupyter server (subprocess, real HTTP)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

import nbdeploy
from nbdeploy.targets.registry import target_names

from .conftest import TOKEN, LabServer, wait_for

ROUTES = [
    ("GET", "version"), ("GET", "targets"), ("GET", "models"), ("GET", "models/scaler"), ("GET", "services"),
    ("POST", "services"), ("GET", "services/x-svc"), ("DELETE", "services/x-svc"), ("GET", "services/x-svc/logs"),
    ("POST", "services/x-svc/score"), ("POST", "services/x-svc/update"), ("POST", "services/x-svc/rollback"),
    ("GET", "events"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_nothing_answers_without_auth(lab_server: LabServer, method: str, route: str) -> None:
    with lab_server.anonymous() as client:
        answer = client.request(method, lab_server.url(route), content=b"{}")
    assert answer.status_code in (401, 403), (method, route, answer.status_code, answer.text[:200])
    assert "scaler" not in answer.text


def test_a_wrong_token_is_refused(lab_server: LabServer) -> None:
    answer = httpx.get(lab_server.url("models"), headers={"Authorization": "token wrong"}, trust_env=False)
    assert answer.status_code == 403


def test_the_servers_own_xsrf_check_applies_to_cookie_sessions(lab_server: LabServer) -> None:
    with httpx.Client(trust_env=False, timeout=30) as browser:
        browser.get(f"{lab_server.base}/login", params={"token": TOKEN})  # what a browser does: a cookie session
        browser.post(f"{lab_server.base}/login", data={"password": TOKEN, "_xsrf": browser.cookies.get("_xsrf", "")})
        assert browser.get(lab_server.url("models")).status_code == 200  # the cookie is enough to read
        refused = browser.post(lab_server.url("services/x-svc/update"), json={})
        assert refused.status_code == 403 and "_xsrf" in refused.text
        allowed = browser.post(lab_server.url("services/x-svc/update"), json={},
                               headers={"X-XSRFToken": browser.cookies["_xsrf"]})
        assert allowed.status_code == 404  # past auth and XSRF: the service does not exist


def test_version_handshake(lab_server: LabServer) -> None:
    with lab_server.client() as client:
        doc = client.get(lab_server.url("version")).json()
    assert doc == {"version": nbdeploy.__version__, "api": 1}


def test_targets_come_from_the_target_registry(lab_server: LabServer) -> None:
    with lab_server.client() as client:
        doc = client.get(lab_server.url("targets")).json()
    assert doc["targets"] == target_names() and "process" in doc["targets"]
    assert doc["workspace"] == str(lab_server.workspace)


def test_saved_environments_are_offered_and_a_missing_one_is_named(lab_server: LabServer) -> None:
    from nbdeploy import Environment, Workspace
    from nbdeploy.specs.environment_store import save_environment

    save_environment(Workspace(lab_server.workspace), Environment("sklearn-env"))
    with lab_server.client() as client:
        assert client.get(lab_server.url("targets")).json()["environments"] == ["sklearn-env"]
        missing = client.post(lab_server.url("services"), json={
            "name": "env-svc", "models": ["scaler:1"], "entryScript": "score.py", "environment": "sklearn-evn"})
    assert missing.status_code == 404 and missing.json()["type"] == "EnvironmentNotFound"
    assert "Did you mean 'sklearn-env'" in missing.json()["message"]


def test_models_list_versions_newest_first_with_tags_size_and_users(lab_server: LabServer) -> None:
    with lab_server.client() as client:
        models = client.get(lab_server.url("models")).json()["models"]
        one = client.get(lab_server.url("models/scaler")).json()
        missing = client.get(lab_server.url("models/scalar"))
    assert [m["name"] for m in models] == ["scaler"]
    versions = models[0]["versions"]
    assert [v["version"] for v in versions] == [2, 1] and models[0]["latest"] == 2
    assert versions[0]["tags"] == {"scale": "3"} and versions[0]["description"] == "multiplies by 3"
    assert versions[0]["size"] == len('{"scale": 3}') and versions[0]["sizeText"].endswith("B")
    assert one["name"] == "scaler" and len(one["versions"]) == 2
    assert missing.status_code == 404 and "Did you mean 'scaler'" in missing.json()["message"]


def test_errors_map_to_http_status_with_a_message(lab_server: LabServer) -> None:
    with lab_server.client() as client:
        missing = client.get(lab_server.url("services/no-such"))
        not_json = client.post(lab_server.url("services"), content=b"{nope")
        bad_name = client.post(lab_server.url("services"), json={"name": "Bad_Name", "models": ["scaler:1"], "entryScript": "score.py"})
        no_model = client.post(lab_server.url("services"), json={"name": "nm-svc", "models": ["nothing:1"], "entryScript": "score.py"})
        bad_lines = client.get(lab_server.url("services/no-such/logs"), params={"lines": "x"})
    assert missing.status_code == 404 and missing.json()["type"] == "ServiceNotFound"
    assert "No service named 'no-such'" in missing.json()["message"]
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["message"]
    assert bad_name.status_code == 400 and "Invalid service name" in bad_name.json()["message"]
    assert no_model.status_code == 404 and no_model.json()["type"] == "ModelNotFound"
    assert bad_lines.status_code == 400


class EventReader:
    """Reads the event stream in a thread and keeps every event."""

    def __init__(self, server: LabServer) -> None:
        self.events: list[dict[str, Any]] = []
        self._client = server.client()
        self._stream = self._client.stream("GET", server.url("events"), timeout=httpx.Timeout(120, read=None))
        self.response = self._stream.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
        except httpx.HTTPError:
            pass

    def find(self, predicate) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
        return next((e for e in list(self.events) if predicate(e)), None)

    def close(self) -> None:
        self._client.close()


def _service_event(name: str, **fields: Any):  # type: ignore[no-untyped-def]
    def match(event: dict[str, Any]) -> bool:
        svc = event.get("service") or {}
        return event["type"] == "service" and svc.get("name") == name and all(svc.get(k) == v for k, v in fields.items())
    return match


@pytest.mark.slow
def test_deploy_score_logs_update_rollback_delete_with_pushed_states(lab_server: LabServer) -> None:
    events = EventReader(lab_server)
    try:
        assert events.response.status_code == 200
        assert events.response.headers["content-type"].startswith("text/event-stream")
        wait_for(lambda: events.find(lambda e: e["type"] == "snapshot"), 30, what="the first snapshot")
        with lab_server.client() as client:
            started = client.post(lab_server.url("services"), json={
                "name": "lab-svc", "models": ["scaler:1"], "entryScript": "score.py", "target": "process"})
            assert started.status_code == 202, started.text
            assert started.json()["name"] == "lab-svc"
            wait_for(lambda: events.find(_service_event("lab-svc", state="Healthy")), 120, what="Healthy pushed")

            listed = client.get(lab_server.url("services")).json()["services"]
            assert [s["name"] for s in listed] == ["lab-svc"]
            assert listed[0]["state"] == "Healthy" and listed[0]["models"] == ["scaler:1"]
            assert listed[0]["scoringUri"].startswith("http://127.0.0.1:")
            used = client.get(lab_server.url("models/scaler")).json()["versions"]
            assert used[1]["usedBy"] == ["lab-svc"] and used[0]["usedBy"] == []

            answer = client.post(lab_server.url("services/lab-svc/score"), json={"payload": '{"data": [1, 2]}'})
            assert answer.status_code == 200 and answer.json()["result"] == [2, 4]
            failed = client.post(lab_server.url("services/lab-svc/score"), json={"payload": '{"data": "boom"}'})
            assert failed.status_code == 502 and failed.json()["type"] == "ScoringError"
            assert "boom is not a number list" in failed.json()["message"]  # the server-side exception's message
            assert failed.json()["scoringStatus"] == 500

            logs = client.get(lab_server.url("services/lab-svc/logs"), params={"lines": 100}).json()["logs"]
            assert "init done, scale 2" in logs

            updated = client.post(lab_server.url("services/lab-svc/update"), json={"models": ["scaler:2"]})
            assert updated.status_code == 200, updated.text
            assert updated.json()["revision"] == 2 and updated.json()["models"] == ["scaler:2"]
            assert client.post(lab_server.url("services/lab-svc/score"), json={"payload": {"data": [1]}}).json()["result"] == [3]
            wait_for(lambda: events.find(_service_event("lab-svc", revision=2, state="Healthy")), 30, what="revision 2 pushed")

            refused = client.post(lab_server.url("services/lab-svc/rollback"), json={"revision": 9})
            assert refused.status_code == 400 and "no revision 9" in refused.json()["message"]
            rolled = client.post(lab_server.url("services/lab-svc/rollback"), json={"revision": 1})
            assert rolled.status_code == 200, rolled.text
            assert rolled.json()["revision"] == 3 and rolled.json()["models"] == ["scaler:1"]
            detail = client.get(lab_server.url("services/lab-svc")).json()
            assert [r["revision"] for r in detail["revisions"]] == [3, 2, 1]
            assert [r["outcome"] for r in detail["revisions"]] == ["serving", "replaced", "replaced"]
            assert detail["serialized"]["computeType"] == "process"

            gone = client.delete(lab_server.url("services/lab-svc"))
            assert gone.status_code == 200 and gone.json() == {"name": "lab-svc", "deleted": True}
            wait_for(lambda: events.find(lambda e: e == {"type": "removed", "name": "lab-svc"}), 30, what="removed pushed")
            assert client.get(lab_server.url("services/lab-svc")).status_code == 404
            assert client.get(lab_server.url("services")).json()["services"] == []
    finally:
        events.close()


@pytest.mark.slow
def test_changes_from_outside_the_server_are_pushed(lab_server: LabServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A registration and a deploy from this process (as a notebook or the CLI would) reach the stream."""
    from nbdeploy import InferenceConfig, Model, ProcessDeploymentConfig, deploy

    events = EventReader(lab_server)
    try:
        wait_for(lambda: events.find(lambda e: e["type"] == "snapshot"), 30, what="the first snapshot")
        model = tmp_path / "scaler.json"
        model.write_text('{"scale": 5}')
        Model.register(model, "scaler", workspace=lab_server.workspace)
        wait_for(lambda: events.find(lambda e: e["type"] == "models"), 10, what="a models event")
        svc = deploy("outside-svc", ["scaler:3"], InferenceConfig(str(lab_server.root / "score.py")),
                     ProcessDeploymentConfig(), workspace=lab_server.workspace)
        wait_for(lambda: events.find(_service_event("outside-svc")), 10, what="the new service pushed")
        svc.wait_for_deployment()
        wait_for(lambda: events.find(_service_event("outside-svc", state="Healthy")), 10, what="Healthy pushed")
        svc.delete()
        wait_for(lambda: events.find(lambda e: e == {"type": "removed", "name": "outside-svc"}), 10, what="removed pushed")
    finally:
        events.close()


@pytest.mark.slow
def test_a_refused_update_stays_visible_while_the_service_keeps_serving(lab_server: LabServer) -> None:
    from nbdeploy import InferenceConfig, ProcessDeploymentConfig, deploy
    from nbdeploy.errors import UpdateFailed

    broken = lab_server.root / "broken.py"
    broken.write_text("def init():\n    raise RuntimeError('no model here')\n\ndef run(raw):\n    return raw\n")
    svc = deploy("refused-svc", ["scaler:1"], InferenceConfig(str(lab_server.root / "score.py")),
                 ProcessDeploymentConfig(), workspace=lab_server.workspace)
    svc.wait_for_deployment()
    with pytest.raises(UpdateFailed):
        svc.update(inference_config=InferenceConfig(str(broken)))
    with lab_server.client() as client:
        summary = wait_for(lambda: next((s for s in client.get(lab_server.url("services")).json()["services"]
                                         if s["name"] == "refused-svc" and s["failedUpdate"]), None), 30, what="the failed update")
        assert summary["state"] == "Healthy" and summary["revision"] == 1 and summary["inFlight"] is None
        assert summary["failedUpdate"]["revision"] == 2 and summary["failedUpdate"]["outcome"] == "failed"
        assert "init() failed" in summary["failedUpdate"]["reason"]
        assert client.post(lab_server.url("services/refused-svc/score"), json={"payload": '{"data": [2]}'}).json()["result"] == [4]
    svc.delete()
