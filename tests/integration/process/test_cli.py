"""The ``nbdeploy service`` commands end to end, as a shell or CI would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def nbdeploy(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nbdeploy", "--workspace", str(ws), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"nbdeploy {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_service_commands(workspace, model, score_py, tmp_path, diabetes):
    X, _ = diabetes
    ws = workspace.path
    out = nbdeploy(ws, "service", "deploy", "-n", "cli-svc", "-m", "diabetes:1", "--entry-script", str(score_py), "--auth").stdout
    assert "Healthy" in out and "Scoring URI: http://127.0.0.1:" in out
    listing = nbdeploy(ws, "service", "list").stdout
    assert "cli-svc" in listing and "Healthy" in listing
    shown = json.loads(nbdeploy(ws, "service", "show", "cli-svc", "-o", "json").stdout)
    assert shown["state"] == "Healthy" and shown["models"] == ["diabetes:1"] and shown["authEnabled"] is True
    answer = json.loads(nbdeploy(ws, "service", "run", "cli-svc", "--data", json.dumps({"data": X[:2]})).stdout)
    assert len(answer) == 2
    keys = nbdeploy(ws, "service", "keys", "cli-svc").stdout
    assert keys.startswith("primary")
    nbdeploy(ws, "service", "regen-key", "cli-svc", "secondary")
    assert nbdeploy(ws, "service", "keys", "cli-svc").stdout.splitlines()[1] != keys.splitlines()[1]
    v2 = tmp_path / "v2.py"
    v2.write_text("def init():\n    pass\ndef run(raw):\n    return 'v2'\n")
    nbdeploy(ws, "service", "update", "cli-svc", "--entry-script", str(v2))
    assert json.loads(nbdeploy(ws, "service", "run", "cli-svc", "--data", "{}").stdout) == "v2"
    assert "ready for serving traffic" in nbdeploy(ws, "service", "logs", "cli-svc", "-n", "50").stdout
    nbdeploy(ws, "service", "delete", "cli-svc")
    gone = nbdeploy(ws, "service", "delete", "cli-svc", check=False)
    assert gone.returncode != 0 and "No service named 'cli-svc'" in gone.stderr


def test_deploy_with_v1_config_files(workspace, model, score_py, tmp_path):
    (tmp_path / "inferenceconfig.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "."}))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps({"computeType": "process", "workers": 1}))
    out = nbdeploy(workspace.path, "service", "deploy", "-n", "from-files", "-m", "diabetes",
                   "--ic", str(tmp_path / "inferenceconfig.json"), "--dc", str(tmp_path / "deploymentconfig.json")).stdout
    assert "Healthy" in out


@pytest.mark.parametrize("args, message", [
    (["service", "deploy", "-n", "x-svc", "--entry-script", "score.py"], "Entry script score.py does not exist"),
    (["service", "deploy", "-n", "x-svc", "-m", "diabetes"], "--entry-script"),
    (["service", "deploy", "-n", "x-svc", "-m", "nope", "--entry-script", "{script}"], "No model named 'nope'"),
    (["service", "deploy", "-n", "x-svc", "-m", "diabetes", "--entry-script", "{script}", "--target", "mars"], "No target named 'mars'"),
    (["service", "show", "ghost"], "No service named 'ghost'"),
])
def test_cli_errors_are_one_line_reasons(workspace, model, score_py, args, message):
    args = [a.replace("{script}", str(score_py)) for a in args]
    result = nbdeploy(workspace.path, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_failed_deploy_exits_non_zero_with_the_reason(workspace, model, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def init():\n    raise RuntimeError('no weights')\ndef run(raw):\n    return raw\n")
    result = nbdeploy(workspace.path, "service", "deploy", "-n", "broken-cli", "-m", "diabetes", "--entry-script", str(broken), check=False)
    assert result.returncode == 1
    assert "Failed" in result.stderr and "no weights" in result.stderr


def test_a_script_that_needs_no_model_deploys_without_one(workspace, tmp_path):
    script = tmp_path / "echo.py"
    script.write_text("def init():\n    pass\ndef run(raw):\n    return {'echo': raw}\n")
    nbdeploy(workspace.path, "service", "deploy", "-n", "no-model", "--entry-script", str(script))
    answer = json.loads(nbdeploy(workspace.path, "service", "run", "no-model", "--data", "hi").stdout)
    assert answer == {"echo": "hi"}


def test_target_options_come_from_the_target(workspace):
    aks = nbdeploy(workspace.path, "service", "deploy", "--target", "aks", "--help").stdout
    process = nbdeploy(workspace.path, "service", "deploy", "--target", "process", "--help").stdout
    assert "--replicas" in aks and "--namespace" in aks and "--workers" not in aks
    assert "--workers" in process and "--isolated" in process and "--replicas" not in process
    assert "--auth / --no-auth" in aks and "--auth / --no-auth" in process  # the common options
    refused = nbdeploy(workspace.path, "service", "deploy", "-n", "x-svc", "--entry-script", "s.py", "--replicas", "2",
                       check=False)
    assert refused.returncode == 2
    assert ("--replicas is not an option of --target process; its own options: --port, --host, --workers, "
            "--isolated") in refused.stderr
    listing = nbdeploy(workspace.path, "service", "targets", "--no-check").stdout
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["aci", "aks", "edge", "local", "process"]


def test_requirements_are_never_ignored_on_the_process_target(workspace, model, score_py, tmp_path):
    (tmp_path / "req.txt").write_text("nbdeploy-no-such-package==1.0\n")
    refused = nbdeploy(workspace.path, "service", "deploy", "-n", "req-svc", "-m", "diabetes", "--entry-script",
                       str(score_py), "--requirements", str(tmp_path / "req.txt"), "--no-isolated", check=False)
    assert refused.returncode == 1 and "does not satisfy nbdeploy-no-such-package==1.0" in refused.stderr
    assert "--isolated" in refused.stderr
    isolated = nbdeploy(workspace.path, "service", "deploy", "-n", "req-svc", "-m", "diabetes", "--entry-script",
                        str(score_py), "--requirements", str(tmp_path / "req.txt"), check=False)
    assert isolated.returncode == 1 and "nbdeploy-no-such-package" in isolated.stderr  # the isolated build ran
    assert "isolated environment" in isolated.stdout + isolated.stderr
    assert "req-svc" not in nbdeploy(workspace.path, "service", "list").stdout


def test_a_failed_first_deploy_runs_again_as_is_and_model_deploy_is_an_alias(workspace, model, tmp_path):
    script = tmp_path / "flaky.py"
    script.write_text("def init():\n    raise RuntimeError('config missing')\ndef run(raw):\n    return raw\n")
    args = ["model", "deploy", "-n", "again-svc", "-m", "diabetes", "--entry-script", str(script)]
    failed = nbdeploy(workspace.path, *args, check=False)
    assert failed.returncode == 1 and "config missing" in failed.stderr
    script.write_text("def init():\n    pass\ndef run(raw):\n    return 'fixed'\n")  # the user fixes the script
    again = nbdeploy(workspace.path, *args)  # the same command, no --overwrite
    assert "no revision of it ever served" in again.stdout and "Healthy" in again.stdout
    assert json.loads(nbdeploy(workspace.path, "service", "run", "again-svc", "--data", "{}").stdout) == "fixed"
    refused = nbdeploy(workspace.path, *args, check=False)  # now it serves: replacing it needs --overwrite
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
