"""The ``aci`` target on the remote TLS engine (``tests/engines/aci.sh up``): deploy time, bytes shipped by a
model-only update, and scoring over TLS with keys against plain HTTP on the same engine.

Prints one table:

1. deploy -> Healthy with the base image already on the remote engine (``aci.sh seed``) and the local build
   cache warm (a warm-up service of the same environment deployed first), twice: while the warm-up service
   still runs (its environment's layers are on the engine: only app code and model are shipped), and after it
   was deleted (the environment's venv layer is shipped again); the whole ``deploy()`` +
   ``wait_for_deployment()``, split into build, ship (from the revision's handle) and start -> Healthy;
   both with ``cpu_cores=1`` (at v1's default 0.1 the CPU quota makes Python's start-up alone take ~10 s); goal <= 15 s;
2. a model-only update: bytes ``ship_image`` sent (the target records them in the revision's handle) against
   the model's size; goal <= model size + 1 MB;
3. scoring throughput at c=16 (wrk, 1 thread, fixed duration after a warm-up; median of interleaved rounds) over HTTPS with key auth,
   against the anchor measured in the same run: the same app on the same engine over plain HTTP without
   keys, both with ``cpu_cores=1`` (at the default 0.1 the CPU quota, not the protocol, is measured); goal
   ratio >= 0.85. A last row splits the cost: plain HTTP with key auth against the same anchor.

Needs ``bash tests/engines/docker.sh up``, ``bash tests/engines/aci.sh up`` and wrk (``apt-get install wrk``).
Run: ``.venv/bin/python benchmarks/aci.py [--model-mb 20] [--duration 5] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbdeploy
from nbdeploy.specs import Environment
from nbdeploy.targets.container_instance import AciDeploymentConfig

ROOT = Path(__file__).resolve().parents[1]
BASE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN = uuid.uuid4().hex[:6]
SCORE = """\
import json, os

def init():
    global size
    size = os.path.getsize(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.bin"))

def run(raw_data):
    return {"size": size, "n": len(json.loads(raw_data)["data"])}
"""


def engine_files() -> dict[str, str]:
    script = ROOT / "tests/engines/aci.sh"
    result = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("the aci engine is not running: bash tests/engines/aci.sh up")
    subprocess.run(["bash", str(script), "seed", BASE], check=True, capture_output=True)
    env = dict(word.split("=", 1) for word in result.stdout.split()[1:])
    cert = Path(env["DOCKER_CERT_PATH"])
    return {"engine_url": env["DOCKER_HOST"], "tls_ca": str(cert / "ca.pem"), "tls_cert": str(cert / "cert.pem"),
            "tls_key": str(cert / "key.pem")}


def model(ws: nbdeploy.Workspace, folder: Path, mb: int, tag: str) -> nbdeploy.Model:
    path = folder / tag / "model.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(mb * 2**20))
    return nbdeploy.Model.register(path, "bench-model", workspace=ws)


def inference(folder: Path) -> nbdeploy.InferenceConfig:
    (folder / "score.py").write_text(SCORE)
    env = Environment("aci-bench")
    env.docker.base_image = BASE
    return nbdeploy.InferenceConfig(str(folder / "score.py"), environment=env)


def deploy(ws: nbdeploy.Workspace, name: str, models: list[nbdeploy.Model], ic: nbdeploy.InferenceConfig,
           config: AciDeploymentConfig) -> tuple[nbdeploy.Webservice, dict[str, float]]:
    """The service and its times: total, build, ship, start (create + init until Healthy)."""
    t0 = time.perf_counter()
    svc = nbdeploy.deploy(name, models, ic, config, workspace=ws)
    t1 = time.perf_counter()
    svc.wait_for_deployment()
    t2 = time.perf_counter()
    shipped = svc._current()[0]["shipped"]
    return svc, {"total": t2 - t0, "ship": shipped["seconds"], "mb": shipped["bytes"] / 1e6,
                 "build": t1 - t0 - shipped["seconds"], "start": t2 - t1}


def deploy_row(what: str, times: dict[str, float]) -> str:
    goal = "met" if times["total"] <= 15 else "NOT met"
    return (f"| deploy -> Healthy, {what} | {times['total']:.1f} s (build+start container {times['build']:.1f} s, "
            f"ship {times['mb']:.1f} MB {times['ship']:.1f} s, init -> Healthy {times['start']:.1f} s) | | | <= 15 s {goal} |")


def wrk(url: str, headers: dict[str, str], duration: int, folder: Path) -> float:
    """Requests per second of ``wrk -t1 -c16`` POSTing a small body (after a discarded 2 s warm-up)."""
    lua = folder / f"post-{len(headers)}.lua"
    lines = ['wrk.method = "POST"', f'wrk.body = {json.dumps(json.dumps({"data": [1, 2, 3]}))}',
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lua.write_text("\n".join(lines) + "\n")
    rates = []
    for seconds in (2, duration):
        out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(lua), url], capture_output=True,
                             text=True, check=True).stdout
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if bad or "Socket errors" in out:
            sys.exit(f"wrk saw failures against {url}:\n{out}")
        rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
    return rates[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-mb", type=int, default=20)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    engine = engine_files()
    with tempfile.TemporaryDirectory(prefix="nbdeploy-aci-bench-") as tmp:
        folder = Path(tmp)
        ws = nbdeploy.Workspace.create(folder / "ws")
        ic = inference(folder)
        try:
            warm, _ = deploy(ws, f"acib{RUN}-warm", [model(ws, folder, 1, "warm")], ic, AciDeploymentConfig(**engine))
            warm.delete(delete_image=True)  # the build cache stays warm; the engine keeps only the base image
            m0 = model(ws, folder, args.model_mb, "v0")
            alone_svc, alone = deploy(ws, f"acib{RUN}-alone", [m0], ic, AciDeploymentConfig(cpu_cores=1, **engine))
            m1 = model(ws, folder, args.model_mb, "v1")
            tls_svc, beside = deploy(ws, f"acib{RUN}-tls", [m1], ic,
                                     AciDeploymentConfig(ssl_enabled=True, cpu_cores=1, **engine))
            alone_svc.delete(delete_image=True)
            m2 = model(ws, folder, args.model_mb, "v2")
            tls_svc.update(models=[m2])
            shipped = tls_svc._current()[0]["shipped"]["bytes"]
            plain, _ = deploy(ws, f"acib{RUN}-plain", [m1], ic,
                              AciDeploymentConfig(auth_enabled=False, cpu_cores=1, **engine))
            # TLS with keys vs plain HTTP: wrk verifies no certificate (the CA is checked by run() in the tests)
            key = tls_svc.get_keys()[0]
            keyed, _ = deploy(ws, f"acib{RUN}-keyed", [m1], ic, AciDeploymentConfig(cpu_cores=1, **engine))
            runs: dict[str, list[float]] = {"tls": [], "plain": [], "keyed": []}
            for _ in range(args.rounds):  # interleaved, medians: the machine's other load drifts
                runs["tls"].append(wrk(tls_svc.scoring_uri, {"Authorization": f"Bearer {key}"}, args.duration, folder))
                runs["plain"].append(wrk(plain.scoring_uri, {}, args.duration, folder))
                runs["keyed"].append(wrk(keyed.scoring_uri, {"Authorization": f"Bearer {keyed.get_keys()[0]}"},
                                         args.duration, folder))
            tls_rps, plain_rps, keyed_rps = (statistics.median(runs[k]) for k in ("tls", "plain", "keyed"))
        finally:
            for svc in nbdeploy.Webservice.list(ws):
                svc.delete(delete_image=True)
    model_bytes = args.model_mb * 2**20
    print(f"\naci target on {engine['engine_url']} (TLS engine), model {args.model_mb} MiB, base {BASE} present\n")
    print("| measure | value | anchor | ratio | goal |")
    print("|---|---|---|---|---|")
    print(deploy_row("a service of the same environment on the engine", beside))
    print(deploy_row("only the base image on the engine", alone))
    print(f"| model-only update: bytes shipped | {shipped / 1e6:.2f} MB | model {model_bytes / 1e6:.2f} MB | "
          f"x{shipped / model_bytes:.3f} | <= model + 1 MB {'met' if shipped <= model_bytes + 2**20 else 'NOT met'} |")
    print(f"| scoring c=16, HTTPS + key auth | {tls_rps:.0f} req/s | plain HTTP, no auth: {plain_rps:.0f} req/s | "
          f"x{tls_rps / plain_rps:.2f} | >= 0.85 {'met' if tls_rps / plain_rps >= 0.85 else 'NOT met'} |")
    print(f"| (split) scoring c=16, plain HTTP + key auth | {keyed_rps:.0f} req/s | plain HTTP, no auth | "
          f"x{keyed_rps / plain_rps:.2f} | (what keys alone cost) |")


if __name__ == "__main__":
    main()
