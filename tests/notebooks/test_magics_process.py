"""The magics end to end on the process target (real scoring servers)."""

from __future__ import annotations

import threading
import time

import pytest
from IPython.core.error import UsageError

from nbdeploy.errors import DeploymentFailed
from nbdeploy.service import Webservice

from .conftest import SCORE, SLOW_SCORE


def test_deploy_score_logs_services_undeploy(ip, diabetes_model, capsys):
    ip.run_cell_magic("score_script", "score.py", SCORE)
    svc = ip.run_line_magic("deploy", "svc-a --model diabetes:1 --workers 1")
    out = capsys.readouterr().out
    assert "svc-a: Transitioning" in out and "svc-a: Healthy, scoring at http://127.0.0.1:" in out
    assert svc.state == "Healthy"
    answer = ip.run_line_magic("score", "svc-a $payload")
    assert len(answer) == 2
    ip.user_ns["name"] = "svc-a"
    assert ip.run_line_magic("score", '$name {"data": [[0,0,0,0,0,0,0,0,0,0]]}')
    table = ip.run_line_magic("services", "")
    assert "svc-a" in repr(table) and "Healthy" in repr(table)
    ip.run_line_magic("logs", "svc-a -n 3")
    assert "ready for serving traffic" in capsys.readouterr().out
    ip.run_line_magic("logs", "svc-a -n 1 --follow --for 1")
    ip.run_line_magic("undeploy", "svc-a")
    assert "deleted svc-a" in capsys.readouterr().out
    assert Webservice.list() == []


def test_failed_deploy_raises_with_state_reason_and_log_tail(ip, diabetes_model, capsys):
    ip.run_cell_magic("score_script", "bad.py", "def init():\n    raise ValueError('no weights here')\n\ndef run(d):\n    return d\n")
    with pytest.raises(DeploymentFailed) as info:
        ip.run_line_magic("deploy", "svc-bad --model diabetes")
    shown = "\n".join(info.value._render_traceback_())
    assert "state:  Failed" in shown and "reason:" in shown and "no weights here" in shown and "%logs svc-bad" in shown
    assert "svc-bad: ended Failed" in capsys.readouterr().out


def test_score_on_a_service_that_is_not_healthy(ip, diabetes_model):
    ip.run_cell_magic("score_script", "slow.py", SLOW_SCORE)
    errors: list[BaseException] = []
    deploying = threading.Thread(target=lambda: _deploy(ip, "svc-slow", errors))
    deploying.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if Webservice("svc-slow").state == "Transitioning":
                    break
            except Exception:
                pass
            time.sleep(0.1)
        with pytest.raises(UsageError, match=r"Service .svc-slow. is Transitioning: .*Wait for it"):
            ip.run_line_magic("score", "svc-slow $payload")
    finally:
        deploying.join(60)
    assert not errors
    assert len(ip.run_line_magic("score", "svc-slow $payload")) == 2


def _deploy(ip, name: str, errors: list[BaseException]) -> None:
    try:
        ip.run_line_magic("deploy", f"{name} --model diabetes")
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def test_environment_and_inference_config_cells_feed_a_deploy(ip, diabetes_model, capsys, tmp_path):
    ip.run_cell_magic("score_script", "envscore.py", "import os\n\ndef init():\n    pass\n\ndef run(raw):\n    return os.environ['GREETING']\n")
    ip.run_cell_magic("environment", "greeting-env", "variables: {GREETING: hello from the environment}\n")
    svc = ip.run_line_magic("deploy", "svc-env --model diabetes --entry envscore.py --env greeting-env")
    assert svc.run("{}") == "hello from the environment"
    ip.run_cell_magic("inference_config", "", '{"entryScript": "envscore.py", "environment": {"name": "inline", "environmentVariables": {"GREETING": "hello from the inference config"}}}')
    svc2 = ip.run_line_magic("deploy", "svc-ic --model diabetes")
    assert svc2.run("{}") == "hello from the inference config"
    with pytest.raises(UsageError, match="No environment named 'greting-env'. Did you mean 'greeting-env'"):
        ip.run_line_magic("deploy", "svc-typo --model diabetes --entry envscore.py --env greting-env")
    for name in ("svc-env", "svc-ic"):
        ip.run_line_magic("undeploy", name)


def test_running_the_notebook_again_updates_its_service(ip, diabetes_model, capsys):
    ip.run_cell_magic("score_script", "score.py", SCORE)
    first = ip.run_line_magic("deploy", "svc-rerun --model diabetes:1")
    assert first.revision == 1
    again = ip.run_line_magic("deploy", "svc-rerun --model diabetes:1")  # the same cell, run again
    assert "updating it" in capsys.readouterr().out
    assert again.revision == 2 and again.refresh().state == "Healthy"
    assert len(Webservice.list()) == 1


def test_scoring_error_shows_what_run_raised(ip, diabetes_model):
    from nbdeploy.errors import ScoringError

    ip.run_cell_magic("score_script", "raising.py", "def init():\n    pass\n\ndef run(raw):\n    raise ValueError('expected 10 features, got 3')\n")
    ip.run_line_magic("deploy", "svc-raise --model diabetes")
    with pytest.raises(ScoringError) as info:
        ip.run_line_magic("score", """svc-raise '{"data": [[1, 2, 3]]}'""")
    shown = "\n".join(info.value._render_traceback_())
    assert "answered 500" in shown and "ValueError: expected 10 features, got 3" in shown
    assert "%logs svc-raise" in shown and "nbdeploy service logs" not in shown
