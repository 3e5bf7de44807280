"""Scoring-server benchmark: nbdeploy against azmlinfsrv (and a bare uvicorn app) on the same machine.

Load generator: wrk (Debian package ``wrk``), one thread, loopback only, fixed duration, a warm-up run
discarded before each measurement. Entry scripts: an echo script and a scikit-learn LogisticRegression
trained here into a temp dir. Prints one table: anchor, ours, ratio, target.

    .venv/bin/python benchmarks/server.py [--duration 3] [--reference-python PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = os.environ.get("NBDEPLOY_REFERENCE_PYTHON",
                           str(Path.home() / ".cache/nbdeploy/azmlinfsrv-venv/bin/python"))

ECHO = '''
def init():
    pass

def run(data):
    return data
'''
SKLEARN = '''
import json, os
import joblib
import numpy as np

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

def run(raw):
    return model.predict(np.array(json.loads(raw)["data"])).tolist()
'''
SKLEARN_BATCHED = '''
import json, os
import joblib
import numpy as np
from nbdeploy_batching import nbdeploy_batch

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

@nbdeploy_batch(max_batch_size=64, max_latency_ms=2)
def run(raws):
    rows = [json.loads(r)["data"] for r in raws]
    sizes = [len(r) for r in rows]
    pred = model.predict(np.array([x for r in rows for x in r])).tolist()
    out, i = [], 0
    for n in sizes:
        out.append(pred[i:i + n])
        i += n
    return out
'''
BARE = '''
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("entry", os.environ["BENCH_SCRIPT"])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); mod.init()
import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    out = json.dumps(mod.run(body.decode())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", log_level="warning",
            access_log=False, lifespan="off")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/score", body, {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


class Proc:
    def __init__(self, kind: str, script: Path, model_dir: Path, workers: int, body: bytes) -> None:
        self.port = free_port()
        env = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir), "BENCH_SCRIPT": str(script),
               "PYTHONPATH": str(ROOT)}
        if kind == "ours":
            cmd = [sys.executable, "-m", "nbdeploy.server", "--entry-script", str(script), "--model-dir",
                   str(model_dir), "--port", str(self.port), "--workers", str(workers)]
        elif kind == "reference":
            env.pop("PYTHONPATH")
            cmd = [str(Path(REFERENCE).parent / "azmlinfsrv"), "--entry_script", str(script), "--model_dir",
                   str(model_dir), "--port", str(self.port), "--worker_count", str(workers)]
        else:
            cmd = [sys.executable, str(script.parent / "bare.py"), str(self.port)]
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, cwd=script.parent, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if post(self.port, body) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{kind} did not start ({cmd})")
            time.sleep(0.005)
        self.cold_start = time.perf_counter() - self.t0

    def worker_rss_mib(self) -> float:
        """Mean RSS of the worker processes (the children, or the process itself when it has none)."""
        pids = [self.proc.pid]
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            kids = []
        pids = [int(k) for k in kids] or pids
        rss = []
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss.append(int(line.split()[1]) / 1024)
        return sum(rss) / len(rss)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def _ms(value: str) -> float:
    num, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, lua: Path, conns: int, duration: float) -> dict[str, float]:
    def once(d: float) -> str:
        return subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(d))}s", "--latency", "-s", str(lua),
                               f"http://127.0.0.1:{port}/score"], capture_output=True, text=True, check=True).stdout
    once(1)  # warm-up, discarded
    out = once(duration)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"non-2xx responses during the run:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    tmp = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-"))
    X, y = make_classification(2000, 20, random_state=0)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), tmp / "model.joblib")
    for name, text in (("echo.py", ECHO), ("sk.py", SKLEARN), ("sk_batched.py", SKLEARN_BATCHED), ("bare.py", BARE)):
        (tmp / name).write_text(text)
    sk_body = json.dumps({"data": [X[0].round(4).tolist()]})
    echo_body = json.dumps({"data": [[1, 2, 3]]})
    luas = {}
    for name, body in (("echo", echo_body), ("sk", sk_body)):
        luas[name] = tmp / f"{name}.lua"
        luas[name].write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                              'wrk.headers["Content-Type"] = "application/json"\n')
    rows: list[tuple[str, str, float, float, str]] = []

    def measure(kind: str, script: str, lua: str, workers: int, conns: int) -> tuple[dict[str, float], Proc]:
        body = (echo_body if lua == "echo" else sk_body).encode()
        p = Proc(kind, tmp / script, tmp, workers, body)
        try:
            return wrk(p.port, luas[lua], conns, args.duration), p
        finally:
            p.mem = p.worker_rss_mib()  # type: ignore[attr-defined]
            p.stop()

    for script, lua in (("echo.py", "echo"), ("sk.py", "sk")):
        for workers in (1, 2):
            ref, pr = measure("reference", script, lua, workers, 16)
            ours, po = measure("ours", script, lua, workers, 16)
            rows.append((f"{lua}: req/s @16 conns, {workers} worker(s)", "azmlinfsrv", ref["rps"], ours["rps"], ">= 4x"))
            if workers == 1:
                rows.append((f"{lua}: cold start to first 200 (s)", "azmlinfsrv", pr.cold_start, po.cold_start,
                             "<= 0.8x"))
                rows.append((f"{lua}: RSS per worker (MiB)", "azmlinfsrv", pr.mem, po.mem, "report"))  # type: ignore[attr-defined]
        ref, _ = measure("reference", script, lua, 1, 1)
        ours, _ = measure("ours", script, lua, 1, 1)
        rows.append((f"{lua}: p50 latency @1 conn (ms)", "azmlinfsrv", ref["p50"], ours["p50"], "<= 0.5x"))
        rows.append((f"{lua}: p99 latency @1 conn (ms)", "azmlinfsrv", ref["p99"], ours["p99"], "<= 2 ms"))
        bare, _ = measure("bare", script, lua, 1, 16)
        ours16, _ = measure("ours", script, lua, 1, 16)
        rows.append((f"{lua}: req/s @16 conns vs bare uvicorn", "bare uvicorn", bare["rps"], ours16["rps"],
                     ">= 0.8x (within 1.25x)"))
    unb, _ = measure("ours", "sk.py", "sk", 1, 64)
    bat, _ = measure("ours", "sk_batched.py", "sk", 1, 64)
    rows.append(("sk: req/s @64 conns, batched vs unbatched", "nbdeploy unbatched", unb["rps"], bat["rps"], ">= 2x"))
    print(f"\nwrk -t1, {args.duration}s per run after a 1s warm-up; {os.cpu_count()} CPUs; loopback\n")
    print(f"| {'measure':<46} | {'anchor':<18} | {'anchor value':>12} | {'nbdeploy':>10} | {'ratio':>6} | target |")
    print(f"|{'-' * 48}|{'-' * 20}|{'-' * 14}|{'-' * 12}|{'-' * 8}|--------|")
    for name, anchor, a, o, target in rows:
        print(f"| {name:<46} | {anchor:<18} | {a:>12.3f} | {o:>10.3f} | {o / a:>6.2f} | {target} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
