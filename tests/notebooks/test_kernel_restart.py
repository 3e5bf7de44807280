"""A kernel restart mid-deploy: the service keeps starting and the new kernel finds it by name."""

from __future__ import annotations

import time

import pytest

from .conftest import SLOW_SCORE, require


def _run(kc, code: str, timeout: float = 120) -> str:
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: _collect(msg, sink))
    text = "".join(sink)
    sink.clear()
    assert reply["content"]["status"] == "ok", text + str(reply["content"])
    return text


sink: list[str] = []


def _collect(msg, out: list[str]) -> None:
    content = msg["content"]
    if msg["msg_type"] == "stream":
        out.append(content["text"])
    elif msg["msg_type"] in ("execute_result", "display_data"):
        out.append(content["data"].get("text/plain", ""))
    elif msg["msg_type"] == "error":
        out.append("\n".join(content["traceback"]))


@pytest.mark.slow
def test_kernel_restart_mid_deploy_finds_the_service_again(tmp_path):
    require("jupyter_client")
    require("ipykernel")
    from jupyter_client.manager import start_new_kernel

    (tmp_path / "score.py").write_text(SLOW_SCORE)
    ws = tmp_path / "ws"
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        _run(kc, f"import joblib\nfrom sklearn.linear_model import Ridge\nfrom sklearn.datasets import load_diabetes\n"
                 f"X, y = load_diabetes(return_X_y=True)\njoblib.dump(Ridge().fit(X, y), 'model.joblib')\n"
                 f"%load_ext nbdeploy\n%nbdeploy_workspace {ws}\n%register_model model.joblib --name diabetes")
        kc.execute("%deploy slow-svc --model diabetes --entry score.py")
        deadline = time.monotonic() + 60
        seen = ""
        while "Transitioning" not in seen and time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["msg_type"] == "stream":
                seen += msg["content"]["text"]
        assert "slow-svc: Transitioning" in seen
        km.restart_kernel(now=True)
        kc.wait_for_ready(timeout=60)
        text = _run(kc, f"%load_ext nbdeploy\n%nbdeploy_workspace {ws}\n%services")
        assert "slow-svc" in text
        text = _run(kc, "import nbdeploy\nsvc = nbdeploy.Webservice('slow-svc')\n"
                        "svc.wait_for_deployment(show_output=True)\nprint(svc.state)")
        assert "Healthy" in text
        text = _run(kc, "%score slow-svc {\"data\": [[0,0,0,0,0,0,0,0,0,0]]}")
        assert "[" in text
        _run(kc, "%undeploy slow-svc")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        from nbdeploy.service import Webservice

        for svc in Webservice.list(ws):
            svc.delete()
