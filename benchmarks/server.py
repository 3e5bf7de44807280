"""Scoring-server benchmark: nbdeploy against azmlinfsrv (and a bare uvicorn app) on the same machine.

Load generator: wrk (Debian package ``wrk``), one thread, loopback only, fixed duration, a warm-up run
discarded before each measurement. Entry scripts: an echo script and a scikit-learn LogisticRegression
trained here into a temp dir. Prints one table: anchor, ours, ratio, target.

    .venv/bin/python benchmarks/server.py [--duration 3] [--repeat 3] [--only echo,sk,batch,baseline]
                                         [--baseline DIR]

``--baseline DIR`` adds rows that compare this checkout's server with the one in DIR (another checkout, e.g.
``git worktree add /tmp/base main``), alternating runs, so a change to the hot path is measured against
what it changes (the check for "within 3%").

The reference python is NBDEPLOY_REFERENCE_PYTHON (default ~/.cache/nbdeploy/azmlinfsrv-venv/bin/python).
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
# the same uvicorn settings as nbdeploy's workers (nbdeploy/server/worker.py)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", log_level="warning",
            access_log=False, lifespan="off", server_header=False, backlog=2048)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/score", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Proc:
    def __init__(self, kind: str, script: Path, model_dir: Path, workers: int, body: bytes) -> None:
        self.port = free_port()
        env = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir), "BENCH_SCRIPT": str(script),
               "PYTHONPATH": str(BASELINE if kind == "baseline" else ROOT)}
        if kind in ("ours", "baseline"):
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
                status, self.answer = post(self.port, body)
                if status == 200:
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

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its live children (the workers)."""
        pids = [self.proc.pid]
        try:
            pids += [int(k) for k in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


BASELINE: Path | None = None  # --baseline DIR


def _ms(value: str) -> float:
    num, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, lua: Path, conns: int, duration: float, proc: "Proc | None" = None,
        warmup: bool = True) -> dict[str, float]:
    """One measured wrk run (after a discarded 1 s warm-up); with ``proc``, also its CPU time per request."""
    def once(d: float) -> str:
        return subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(d))}s", "--latency", "-s", str(lua),
                               f"http://127.0.0.1:{port}/score"], capture_output=True, text=True, check=True).stdout
    if warmup:
        once(1)  # warm-up, discarded
    cpu0 = proc.cpu_seconds() if proc else 0.0
    out = once(duration)
    cpu = (proc.cpu_seconds() - cpu0) if proc else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"non-2xx responses during the run:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99, "cpu_us": cpu * 1e6 / max(count, 1)}


def median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3,
                    help="measured runs per server; the anchor's and nbdeploy's runs alternate (median, min-max)")
    ap.add_argument("--only", default="", help="comma-separated: echo, sk, batch, baseline (default: all)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout whose nbdeploy/server is compared with this one's (rows 'vs baseline')")
    args = ap.parse_args()
    global BASELINE
    BASELINE = args.baseline.resolve() if args.baseline else None
    if BASELINE is not None and not (BASELINE / "nbdeploy" / "server" / "__main__.py").is_file():
        sys.exit(f"--baseline {BASELINE}: no nbdeploy/server/__main__.py there")
    # SIGTERM unwinds like Ctrl-C, so the servers started so far are stopped (they run in their own sessions)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    only = set(filter(None, args.only.split(","))) or {"echo", "sk", "batch", "baseline"}
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
    rows: list[tuple[str, str, list[float], list[float], str]] = []
    cpu_rows: list[tuple[str, str, list[float], list[float]]] = []

    def compare(anchor: str, a_script: str, o_script: str, lua: str, workers: int, conns: int
                ) -> tuple[list[dict[str, float]], list[dict[str, float]], Proc, Proc]:
        """Start the anchor and nbdeploy (both stay up), then alternate measured runs between them."""
        body = (echo_body if lua == "echo" else sk_body).encode()
        pa = Proc(anchor, tmp / a_script, tmp, workers, body)
        try:
            po = Proc("ours", tmp / o_script, tmp, workers, body)
        except BaseException:
            pa.stop()
            raise
        try:
            if anchor == "bare" and pa.answer != po.answer:  # the anchor must do the same work
                raise RuntimeError(f"bare anchor answers {pa.answer!r}, nbdeploy {po.answer!r}")
            ra: list[dict[str, float]] = []
            ro: list[dict[str, float]] = []
            for i in range(args.repeat):
                order = [(pa, ra), (po, ro)] if i % 2 == 0 else [(po, ro), (pa, ra)]
                for p, out in order:
                    out.append(wrk(p.port, luas[lua], conns, args.duration, p))
            return ra, ro, pa, po
        finally:
            for p in (pa, po):
                p.mem = p.worker_rss_mib()  # type: ignore[attr-defined]
                p.stop()

    def col(runs: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in runs]

    if BASELINE is not None and "baseline" in only:
        for conns in (16, 1):
            base, ours, _, _ = compare("baseline", "echo.py", "echo.py", "echo", 1, conns)
            rows.append((f"echo: req/s @{conns} conn(s) vs baseline", "nbdeploy baseline", col(base, "rps"),
                         col(ours, "rps"), ">= 0.97x"))
            cpu_rows.append((f"echo: server CPU us/request @{conns} vs baseline", "nbdeploy baseline",
                             col(base, "cpu_us"), col(ours, "cpu_us")))
    for script, lua in (("echo.py", "echo"), ("sk.py", "sk")):
        if lua not in only:
            continue
        for workers in (1, 2):
            ref, ours, pr, po = compare("reference", script, script, lua, workers, 16)
            rows.append((f"{lua}: req/s @16 conns, {workers} worker(s)", "azmlinfsrv", col(ref, "rps"),
                         col(ours, "rps"), ">= 4x"))
            cpu_rows.append((f"{lua}: server CPU us/request @16, {workers} worker(s)", "azmlinfsrv",
                             col(ref, "cpu_us"), col(ours, "cpu_us")))
            if workers == 1:
                rows.append((f"{lua}: cold start to first 200 (s)", "azmlinfsrv", [pr.cold_start], [po.cold_start],
                             "<= 0.8x"))
                rows.append((f"{lua}: RSS per worker (MiB)", "azmlinfsrv", [pr.mem], [po.mem], "report"))  # type: ignore[attr-defined]
        ref, ours, _, _ = compare("reference", script, script, lua, 1, 1)
        rows.append((f"{lua}: p50 latency @1 conn (ms)", "azmlinfsrv", col(ref, "p50"), col(ours, "p50"), "<= 0.5x"))
        rows.append((f"{lua}: p99 latency @1 conn (ms)", "azmlinfsrv", col(ref, "p99"), col(ours, "p99"),
                     "<= 2 ms"))
        bare, ours, _, _ = compare("bare", script, script, lua, 1, 16)
        rows.append((f"{lua}: req/s @16 conns vs bare uvicorn", "bare uvicorn", col(bare, "rps"), col(ours, "rps"),
                     ">= 0.8x (within 1.25x)"))
        cpu_rows.append((f"{lua}: server CPU us/request @16 vs bare", "bare uvicorn", col(bare, "cpu_us"),
                         col(ours, "cpu_us")))
    if "batch" in only:
        unb, bat, _, _ = compare("ours", "sk.py", "sk_batched.py", "sk", 1, 64)
        rows.append(("sk: req/s @64 conns, batched vs unbatched", "nbdeploy unbatched", col(unb, "rps"),
                     col(bat, "rps"), ">= 2x"))

    def cell(values: list[float]) -> str:
        m = median(values)
        return f"{m:.3f}" if len(values) == 1 else f"{m:.3f} ({min(values):.3g}-{max(values):.3g})"

    print(f"\nwrk -t1, {args.duration}s per run after a 1s warm-up, {args.repeat} alternating runs per server "
          f"(median, min-max); {os.cpu_count()} CPUs; loopback\n")
    print(f"| {'measure':<46} | {'anchor':<18} | {'anchor value':>26} | {'nbdeploy':>26} | {'ratio':>6} | target |")
    print(f"|{'-' * 48}|{'-' * 20}|{'-' * 28}|{'-' * 28}|{'-' * 8}|--------|")
    for name, anchor, a, o, target in rows:
        ratio = median(o) / median(a)
        print(f"| {name:<46} | {anchor:<18} | {cell(a):>26} | {cell(o):>26} | {ratio:>6.2f} | {target} |")
    if cpu_rows:
        print("\nServer CPU time per request (user + system of the server's processes; less sensitive to other load)\n")
        print(f"| {'measure':<46} | {'anchor':<18} | {'anchor value':>26} | {'nbdeploy':>26} | {'ratio':>6} |")
        print(f"|{'-' * 48}|{'-' * 20}|{'-' * 28}|{'-' * 28}|{'-' * 8}|")
        for name, anchor, a, o in cpu_rows:
            print(f"| {name:<46} | {anchor:<18} | {cell(a):>26} | {cell(o):>26} | {median(o) / median(a):>6.2f} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
