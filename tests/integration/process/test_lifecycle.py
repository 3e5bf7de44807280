"""Deploy, score, inspect, reload, keys and delete on the process target (real server subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

import nbdeploy
from nbdeploy.errors import AlreadyExists, DeployError, DeploymentFailed, InvalidSpec, ScoringError, ServiceNotFound
from nbdeploy.service import Webservice
from nbdeploy.specs import ProcessDeploymentConfig, deployment_config_from_dict

from .conftest import write_script


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_deploy_score_and_delete(workspace, model, score_py, diabetes):
    X, _ = diabetes
    svc = nbdeploy.deploy("diabetes-svc", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    status = svc.wait_for_deployment()
    assert str(status.state) == "Healthy"
    assert svc.state == "Healthy" and svc.error is None
    assert svc.scoring_uri == f"http://127.0.0.1:{svc.port}/score"
    assert svc.swagger_uri.endswith("/swagger.json")
    assert len(svc.run(json.dumps({"data": X[:2]}))) == 2
    assert svc.run({"data": X[:1]})  # dicts are JSON-encoded
    record = svc.serialize()
    assert record["state"] == "Healthy" and record["models"] == ["diabetes:1"] and record["computeType"] == "process"
    assert "ready for serving traffic" in svc.get_logs()  # the server logs to the revision log
    assert model.used_by() == ["diabetes-svc"]
    pid = svc._current()[0]["pid"]
    svc.delete()
    assert not _pid_alive(pid), "delete() must leave no process running"
    assert Webservice.list(workspace) == []
    assert model.used_by() == []
    with pytest.raises(ServiceNotFound):
        svc.delete()
    with pytest.raises(ServiceNotFound):
        Webservice("diabetes-svc", workspace)


def test_model_dir_layout_matches_v1(workspace, model, tmp_path):
    script = write_script(tmp_path, """
        import os
        def init():
            pass
        def run(raw):
            root = os.environ["AML_APP_ROOT"]
            return {"model_dir": os.path.relpath(os.environ["AZUREML_MODEL_DIR"], root),
                    "files": sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"])), "cwd": os.getcwd() == root}
    """, "layout.py")
    svc = nbdeploy.deploy("layout", [model], nbdeploy.InferenceConfig(str(script)), workspace=workspace)
    svc.wait_for_deployment()
    assert svc.run("{}") == {"model_dir": "azureml-models/diabetes/1", "files": ["model.joblib"], "cwd": True}


def test_source_directory_and_multiple_models(workspace, model, tmp_path):
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "extradata.json").write_text('{"hello": "world"}')
    write_script(src / "x", """
        import json, os
        def init():
            pass
        def run(raw):
            with open("src/extradata.json") as fh:  # v1: the current folder is the app root
                extra = json.load(fh)
            return {"extra": extra, "models": sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))}
    """)
    other = nbdeploy.Model.register(Path(model.download(str(tmp_path / "dl"))), "other", workspace=workspace)
    ic = nbdeploy.InferenceConfig("x/score.py", source_directory=str(src))
    svc = nbdeploy.deploy("multi", [model, other], ic, workspace=workspace)
    svc.wait_for_deployment()
    assert svc.run("{}") == {"extra": {"hello": "world"}, "models": ["diabetes", "other"]}


def test_bundle_is_reused_when_nothing_changed(workspace, model, score_py):
    from nbdeploy.builders.bundle import create_bundle

    ic = nbdeploy.InferenceConfig(str(score_py))
    first = create_bundle(workspace, [model], ic)
    again = create_bundle(workspace, [model], ic)
    assert first.digest == again.digest and first.path == again.path
    score_py.write_text(score_py.read_text() + "\n# changed\n")
    assert create_bundle(workspace, [model], ic).digest != first.digest


def test_key_auth_and_regen_key(workspace, model, score_py, diabetes):
    X, _ = diabetes
    config = ProcessDeploymentConfig(auth_enabled=True)
    svc = nbdeploy.deploy("secured", [model], nbdeploy.InferenceConfig(str(score_py)), config, workspace=workspace)
    svc.wait_for_deployment()
    primary, secondary = svc.get_keys()
    body = json.dumps({"data": X[:1]})
    assert httpx.post(svc.scoring_uri, content=body, trust_env=False).status_code == 401
    for key in (primary, secondary):
        assert httpx.post(svc.scoring_uri, content=body, headers={"Authorization": f"Bearer {key}"}, trust_env=False).status_code == 200
    assert httpx.get(svc.scoring_uri.replace("/score", "/"), trust_env=False).status_code == 200  # health needs no key
    assert svc.run(body)
    svc.regen_key("Primary")
    new_primary, _ = svc.get_keys()
    assert new_primary != primary

    def status_with(key: str) -> int:
        return httpx.post(svc.scoring_uri, content=body, headers={"Authorization": f"Bearer {key}"}, trust_env=False).status_code

    import time

    deadline = time.monotonic() + 5
    while status_with(primary) != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_with(primary) == 401 and status_with(new_primary) == 200
    assert svc.run(body)  # the Webservice uses the new key


def test_service_found_again_after_the_deploying_process_exits(workspace, model, score_py, diabetes):
    """A kernel restart: another process deployed it; this one finds, scores and deletes it."""
    X, _ = diabetes
    code = textwrap.dedent(f"""
        import nbdeploy
        ws = nbdeploy.Workspace({str(workspace.path)!r})
        svc = nbdeploy.deploy("survivor", ["diabetes:1"], nbdeploy.InferenceConfig({str(score_py)!r}), workspace=ws)
        svc.wait_for_deployment()
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    svc = Webservice("survivor", workspace)
    assert svc.state == "Healthy"
    assert len(svc.run(json.dumps({"data": X[:3]}))) == 3
    pid = svc._current()[0]["pid"]
    svc.delete()
    assert not _pid_alive(pid)


def test_reused_pid_is_not_taken_for_the_server(workspace, model, score_py):
    svc = nbdeploy.deploy("pid-check", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    handle = svc._current()[0]
    target = svc._target()
    fake = {**handle, "pid": os.getpid()}  # a live pid whose start time differs
    assert str(target.status(fake).state) == "Failed"


# -- bad input ------------------------------------------------------------------------------------

def test_missing_entry_script(tmp_path):
    with pytest.raises(nbdeploy.errors.InvalidInput, match="does not exist"):
        nbdeploy.InferenceConfig(str(tmp_path / "nope.py"))


@pytest.mark.parametrize("body, message", [
    ("def init():\n    pass\n", "no run"),
    ("def run(x):\n    return x\n", "no init"),
    ("def init():\n    pass\ndef run(x)\n    return x\n", "syntax error"),
    ("def init():\n    pass\ndef run(*args):\n    return 1\n", r"\*args"),
])
def test_bad_entry_scripts_are_refused_before_starting(workspace, model, tmp_path, body, message):
    script = tmp_path / "bad.py"
    script.write_text(body)
    with pytest.raises(nbdeploy.errors.InvalidInput, match=message):
        nbdeploy.deploy("bad-script", [model], nbdeploy.InferenceConfig(str(script)), workspace=workspace)
    assert Webservice.list(workspace) == []  # nothing half-done


def test_init_raising_gives_failed_with_traceback(workspace, model, tmp_path):
    script = write_script(tmp_path, """
        def init():
            raise RuntimeError("model file is corrupt")
        def run(raw):
            return raw
    """, "broken.py")
    svc = nbdeploy.deploy("broken", [model], nbdeploy.InferenceConfig(str(script)), workspace=workspace)
    with pytest.raises(DeploymentFailed) as info:
        svc.wait_for_deployment()
    assert info.value.state == "Failed"
    assert "model file is corrupt" in info.value.logs
    assert "init" in info.value.reason
    assert svc.state == "Failed" and "model file is corrupt" in svc.error["evidence"]
    with pytest.raises(DeployError, match="Failed"):
        svc.run("{}")


def test_port_in_use(workspace, model, score_py):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(nbdeploy.errors.Conflict, match=f"Port {port}"):
            nbdeploy.deploy("port-clash", [model], nbdeploy.InferenceConfig(str(score_py)), ProcessDeploymentConfig(port=port), workspace=workspace)
    assert Webservice.list(workspace) == []


def test_chosen_port_is_used(workspace, model, score_py):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    svc = nbdeploy.deploy("fixed-port", [model], nbdeploy.InferenceConfig(str(score_py)), ProcessDeploymentConfig(port=port), workspace=workspace)
    svc.wait_for_deployment()
    assert svc.port == port


def test_duplicate_name_needs_overwrite(workspace, model, score_py):
    ic = nbdeploy.InferenceConfig(str(score_py))
    first = nbdeploy.deploy("twice", [model], ic, workspace=workspace)
    first.wait_for_deployment()
    old_pid = first._current()[0]["pid"]
    with pytest.raises(AlreadyExists, match="overwrite"):
        nbdeploy.deploy("twice", [model], ic, workspace=workspace)
    second = nbdeploy.deploy("twice", [model], ic, overwrite=True, workspace=workspace)
    second.wait_for_deployment()
    assert not _pid_alive(old_pid)


def test_unknown_model_version(workspace, model, score_py):
    with pytest.raises(nbdeploy.errors.NbdeployError, match="diabetes"):
        nbdeploy.deploy("unknown-model", ["diabetes:7"], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    with pytest.raises(nbdeploy.errors.ModelNotFound, match="Did you mean 'diabetes'"):
        nbdeploy.deploy("unknown-model", ["diabets"], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)


def test_invalid_deployment_config_key():
    with pytest.raises(InvalidSpec, match="prot: unknown key.*allowed: .*port"):
        deployment_config_from_dict({"computeType": "process", "prot": 5})
    with pytest.raises(InvalidSpec, match="computeType"):
        deployment_config_from_dict({"computeType": "mainframe"})
    with pytest.raises(InvalidSpec, match="port"):
        ProcessDeploymentConfig(port=70000)


def test_invalid_service_name(workspace, model, score_py):
    with pytest.raises(nbdeploy.errors.InvalidName, match="lower-case"):
        nbdeploy.deploy("Bad_Name", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)


def test_scoring_error_carries_status_and_body(workspace, model, score_py):
    svc = nbdeploy.deploy("errors", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    with pytest.raises(ScoringError) as info:
        svc.run("not json")
    assert info.value.status == 500 and "get_logs" in str(info.value)


def test_other_observers_see_deleting_while_delete_runs(workspace, model, score_py, monkeypatch):
    svc = nbdeploy.deploy("going-away", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    observer = Webservice("going-away", workspace)
    seen: list[str] = []
    target = svc._target()
    real_stop = target.stop

    def stop_and_look(handle):
        seen.append(observer.state)  # another notebook or the services board, mid-delete
        real_stop(handle)

    monkeypatch.setattr(target, "stop", stop_and_look)
    svc.delete()
    assert seen == ["Deleting"]


def test_overwrite_builds_first_so_a_failed_build_keeps_the_old_service(workspace, model, score_py, diabetes):
    X, _ = diabetes
    svc = nbdeploy.deploy("keep-me", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    pid = svc._current()[0]["pid"]
    broken = nbdeploy.Environment("broken")
    broken.python.conda_dependencies.add_pip_package("nbdeploy-no-such-package==1.0")
    from nbdeploy.errors import BuildError

    with pytest.raises(BuildError, match="nbdeploy-no-such-package"):
        nbdeploy.deploy("keep-me", [model], nbdeploy.InferenceConfig(str(score_py), environment=broken),
                        overwrite=True, workspace=workspace)
    again = Webservice("keep-me", workspace)
    assert again.revision == 1 and _pid_alive(pid) and again.status().state == "Healthy"
    assert len(again.run({"data": X[:1]})) == 1
