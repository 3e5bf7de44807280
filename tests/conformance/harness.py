"""Start scoring servers (nbdeploy's or the reference azmlinfsrv) as real processes and talk HTTP to them."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
DEFAULT_REFERENCE = Path.home() / ".cache/nbdeploy/azmlinfsrv-venv/bin/python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference_python() -> str:
    """The reference server's python; fails under CI when missing, skips (with the reason) elsewhere."""
    value = os.environ.get("NBDEPLOY_REFERENCE_PYTHON")
    if value:
        return value
    if os.environ.get("CI") == "true":
        pytest.fail("NBDEPLOY_REFERENCE_PYTHON is not set under CI (run scripts/test.sh)")
    if DEFAULT_REFERENCE.exists():
        return str(DEFAULT_REFERENCE)
    pytest.skip("azmlinfsrv not installed: run tests/engines/reference-server.sh up")
    raise AssertionError  # unreachable


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)


@dataclass
class Server:
    """A running server process on 127.0.0.1:port."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    kind: str
    extra: dict = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0, port: int | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(kind: str, script: Path, tmp: Path, model_dir: Path | None = None, env: dict[str, str] | None = None,
          args: list[str] | None = None, wait: bool = True, cwd: Path | None = None, timeout: float = 60.0,
          port: int | None = None, preexec_fn=None) -> Server:
    """Start ``kind`` ('ours' or 'reference') for ``script`` on ``port`` (a free one by default); wait for
    ``GET /`` unless ``wait`` is False. ``preexec_fn`` runs in the child before the server starts."""
    port = port or free_port()
    model_dir = model_dir or tmp
    cwd = cwd or script.parent
    full_env = {**os.environ, **(env or {})}
    full_env.pop("AZUREML_ENTRY_SCRIPT", None)
    if kind == "ours":
        cmd = [sys.executable, "-m", "nbdeploy.server", "--entry-script", str(script), "--model-dir", str(model_dir),
               "--port", str(port), *(args or [])]
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    else:
        exe = str(Path(reference_python()).parent / "azmlinfsrv")
        cmd = [exe, "--entry_script", str(script), "--model_dir", str(model_dir), "--port", str(port), *(args or [])]
        full_env.pop("PYTHONPATH", None)
    log_path = tmp / f"{kind}-{script.stem}-{port}.log"
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, env=full_env,
                                start_new_session=True, preexec_fn=preexec_fn)
    server = Server(proc, port, log_path, kind)
    if wait:
        wait_ready(server, timeout)
    return server


def wait_ready(server: Server, timeout: float = 60.0, path: str = "/") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"{server.kind} server exited with {server.proc.returncode}:\n{server.log()}")
        try:
            if server.request("GET", path, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"{server.kind} server did not start:\n{server.log()}")
