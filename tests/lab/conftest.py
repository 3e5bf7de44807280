"""Fixtures for the side panel's tests: a real Jupyter server (subprocess, loopback, token auth) with the
nbdeploy server extension, a workspace with a registered model, and a score.py that answers quickly."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LABEXT_SRC = ROOT / "labextension"
LABEXT_OUT = ROOT / "nbdeploy" / "labextension"
TOKEN = "nbdeploy-lab-test-token"

SCORE = textwrap.dedent("""
    import json, os, time

    def init():
        global scale
        time.sleep(float(os.environ.get("NBDEPLOY_TEST_SLOW_INIT", "0")))
        folder = os.environ["AZUREML_MODEL_DIR"]
        with open(os.path.join(folder, os.listdir(folder)[0])) as f:
            scale = json.load(f)["scale"]
        print("init done, scale", scale, flush=True)

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        if data == "boom":
            raise ValueError("boom is not a number list")
        return [x * scale for x in data]
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running Jupyter server; ``client`` sends the token, ``anonymous`` sends nothing."""

    base: str
    root: Path
    workspace: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def url(self, route: str) -> str:
        return f"{self.base}/nbdeploy/api/{route}"

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"token {TOKEN}"}, trust_env=False, timeout=120, **kwargs)  # type: ignore[arg-type]

    def anonymous(self) -> httpx.Client:
        return httpx.Client(trust_env=False, timeout=30)


def make_workspace(root: Path) -> Path:
    """A workspace with model ``scaler`` versions 1 (scale 2) and 2 (scale 3), and score.py beside it."""
    from nbdeploy import Model, Workspace

    ws = Workspace.create(root / "ws")
    for scale in (2, 3):
        model = root / "scaler.json"
        model.write_text(json.dumps({"scale": scale}))
        Model.register(model, "scaler", tags={"scale": str(scale)}, description=f"multiplies by {scale}", workspace=ws)
    (root / "score.py").write_text(SCORE)
    return ws.path


def start_server(root: Path, workspace: Path, app: str = "jupyter_server", extra: list[str] | None = None,
                 watch: dict[str, float] | None = None) -> LabServer:
    """``python -m <app>`` on a free loopback port with the nbdeploy server extension enabled."""
    port = free_port()
    config = root / "jupyter_config.json"
    config.write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"nbdeploy.jupyter": True}},
        "NbdeployLab": {"workspace": str(workspace), **(watch or {})},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("NBDEPLOY_WORKSPACE", "JUPYTER_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["JUPYTER_CONFIG_DIR"] = str(root / "jupyter-config-dir")  # the user's own config stays out
    log = root / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--config={config}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", *(extra or []),
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the server keeps it
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"}, timeout=2, trust_env=False).status_code == 200:
                return LabServer(base, root, workspace, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise AssertionError(f"{app} did not start:\n" + log.read_text()[-3000:])


def stop_server(server: LabServer) -> None:
    from nbdeploy.service import Webservice

    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
    for svc in Webservice.list(server.workspace):
        svc.delete()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    pytest.importorskip("jupyter_server")
    root = tmp_path_factory.mktemp("lab")
    server = start_server(root, make_workspace(root))
    yield server
    stop_server(server)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ensure_labextension() -> Path:
    """The built lab extension (``jlpm install && jlpm build`` in labextension/ when it is missing)."""
    if not (LABEXT_OUT / "package.json").is_file():
        jlpm = shutil.which("jlpm") or str(Path(sys.executable).parent / "jlpm")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for step in (["install"], ["build"]):
            done = subprocess.run([jlpm, *step], check=False, cwd=LABEXT_SRC, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise AssertionError(f"jlpm {' '.join(step)} failed in {LABEXT_SRC}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return LABEXT_OUT
