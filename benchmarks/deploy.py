"""Deploy and update on the process target, beside azmlinfsrv's own cold start, in one run.

    python benchmarks/deploy.py [--runs 5]

Prints a table: deploy() -> Healthy for the scikit-learn quickstart model (target < 2 s), the reference
server's cold start (process start -> first 200 from /score) for the same script and model, update() to the
new revision serving (target < 3 s) and failed requests of a client scoring in a loop during the switch
(target 0). The reference server is found via NBDEPLOY_REFERENCE_PYTHON (tests/engines/reference-server.sh up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy

SCORE = textwrap.dedent(
    """
    import json, os
    import joblib
    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    def run(raw_data):
        return model.predict(json.loads(raw_data)["data"]).tolist()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reference_cold_start(python: str, work: Path, body: str) -> float:
    """Seconds from starting azmlinfsrv to its first 200 from POST /score."""
    port = free_port()
    model_dir = work / "ref-model"
    model_dir.mkdir(exist_ok=True)
    shutil.copy(work / "model.joblib", model_dir / "model.joblib")
    exe = str(Path(python).parent / "azmlinfsrv")
    started = time.perf_counter()
    proc = subprocess.Popen([exe, "--entry_script", str(work / "score.py"), "--model_dir", str(model_dir), "--port", str(port)],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(trust_env=False) as client:
            while True:
                try:
                    if client.post(f"http://127.0.0.1:{port}/score", content=body, timeout=2).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("azmlinfsrv exited")
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-deploy-"))
    try:
        ws = nbdeploy.Workspace.create(work / "ws")
        X, y = load_diabetes(return_X_y=True)
        joblib.dump(Ridge().fit(X, y), work / "model.joblib")
        (work / "score.py").write_text(SCORE)
        model = nbdeploy.Model.register(work / "model.joblib", "diabetes", workspace=ws)
        ic = nbdeploy.InferenceConfig(str(work / "score.py"))
        body = json.dumps({"data": X[:2].tolist()})

        deploy_s, first_score_s = [], []
        for i in range(args.runs):
            started = time.perf_counter()
            svc = nbdeploy.deploy(f"bench-{i}", [model], ic, workspace=ws)
            svc.wait_for_deployment()
            deploy_s.append(time.perf_counter() - started)
            svc.run(body)
            first_score_s.append(time.perf_counter() - started)
            svc.delete()

        reference_python = os.environ.get("NBDEPLOY_REFERENCE_PYTHON")
        ref_s = [reference_cold_start(reference_python, work, body) for _ in range(args.runs)] if reference_python else []

        svc = nbdeploy.deploy("bench-update", [model], ic, workspace=ws)
        svc.wait_for_deployment()
        update_s, failed, served = [], 0, 0
        stop = threading.Event()

        def client_loop() -> None:
            nonlocal failed, served
            client = nbdeploy.Webservice("bench-update", ws)
            while not stop.is_set():
                try:
                    client.run(body)
                    served += 1
                except Exception:  # noqa: BLE001 - every failure counts
                    failed += 1

        thread = threading.Thread(target=client_loop, daemon=True)
        thread.start()
        for _ in range(args.runs):
            started = time.perf_counter()
            svc.update()
            update_s.append(time.perf_counter() - started)
        stop.set()
        thread.join(10)
        svc.delete()

        med = statistics.median
        rows = [
            ("deploy() -> Healthy (process)", f"{med(deploy_s):.2f} s", "< 2 s", "yes" if med(deploy_s) < 2 else "NO"),
            ("deploy() -> first 200 from /score", f"{med(first_score_s):.2f} s", "", ""),
            ("azmlinfsrv cold start -> first 200", f"{med(ref_s):.2f} s" if ref_s else "n/a (set NBDEPLOY_REFERENCE_PYTHON)", "", ""),
            ("ratio nbdeploy / azmlinfsrv (first 200)", f"{med(first_score_s) / med(ref_s):.2f}x" if ref_s else "n/a", "", ""),
            ("update() -> new revision serving", f"{med(update_s):.2f} s", "< 3 s", "yes" if med(update_s) < 3 else "NO"),
            ("failed requests during updates", f"{failed} of {failed + served}", "0", "yes" if failed == 0 else "NO"),
        ]
        print(f"benchmarks/deploy.py: median of {args.runs} runs, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        width = max(len(r[0]) for r in rows)
        print(f"| {'measure'.ljust(width)} | value | target | met |")
        print(f"|{'-' * (width + 2)}|-------|--------|-----|")
        for row in rows:
            print(f"| {row[0].ljust(width)} | {row[1]} | {row[2]} | {row[3]} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
