"""Deploy and update on the process target, beside azmlinfsrv's own cold start; new environments; up-to-date checks.

    python benchmarks/deploy.py [--runs 5] [--env-runs 3] [--no-docker]

Prints a table: deploy() -> Healthy for the scikit-learn quickstart model (target < 2 s), the reference
server's cold start (process start -> first 200 from /score) for the same script and model, update() to the
new revision serving (target < 3 s) and failed requests of a client scoring in a loop during the switch
(target 0). The reference server is found via NBDEPLOY_REFERENCE_PYTHON (tests/engines/reference-server.sh up).

Then issue 10's "Speed" rows, each with its anchor measured in the same run:

- a never-seen environment (scikit-learn, pandas, joblib) with a warm package cache -> Healthy on the process
  target (isolated; a fresh workspace per run, so the environment is locked and its venv built each time),
  against ``python -m venv`` + ``pip install`` of the same packages with pip's cache warm;
- the same on local Docker (the lock and the dependencies image removed before each run), against a
  single-stage ``docker build`` that runs ``python -m venv`` + ``pip install`` of the same packages;
- redeploy of an unchanged bundle with a 500 MB model: build_image's up-to-date check, against tarring and
  hashing the whole build context (what deciding it cost before).

The machine's load average is printed with the table: on a shared machine every figure moves with it.
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
from nbdeploy.server import REQUIREMENTS as SERVER_REQUIREMENTS

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


NEW_ENV_PACKAGES = ["scikit-learn", "pandas", "joblib"]
BASE_IMAGE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")


def new_environment(name: str, docker: bool = False) -> nbdeploy.Environment:
    data: dict[str, object] = {"name": name, "pip": list(NEW_ENV_PACKAGES)}
    if docker:
        data["base_image"] = BASE_IMAGE
    return nbdeploy.Environment.from_dict(data)


def timed_deploy(ws: nbdeploy.Workspace, name: str, model: nbdeploy.Model, script: Path, config: object,
                 docker: bool) -> float:
    ic = nbdeploy.InferenceConfig(str(script), environment=new_environment(f"{name}-env", docker))
    started = time.perf_counter()
    svc = nbdeploy.deploy(name, [model], ic, config, workspace=ws)
    try:
        svc.wait_for_deployment()
        return time.perf_counter() - started
    finally:
        svc.delete(delete_image=docker)


def pip_venv_anchor(work: Path) -> float:
    """``python -m venv`` + ``pip install`` of the same packages (pip's cache warm after the first call)."""
    folder = Path(tempfile.mkdtemp(prefix="pip-anchor-", dir=work))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *SERVER_REQUIREMENTS, *NEW_ENV_PACKAGES], check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def new_environment_on_process(work: Path, runs: int) -> tuple[list[float], list[float]]:
    """(seconds to Healthy, anchor seconds) per run; one untimed warm-up of each fills the package caches."""
    from nbdeploy.specs import ProcessDeploymentConfig

    ours, anchor = [], []
    for i in range(runs + 1):
        ws, model, script = fresh_workspace(work, f"proc-{i}")
        seconds = timed_deploy(ws, f"newenv-{i}", model, script, ProcessDeploymentConfig(isolated=True), docker=False)
        pip_s = pip_venv_anchor(work)
        if i:  # run 0 warms uv's and pip's caches
            ours.append(seconds)
            anchor.append(pip_s)
    return ours, anchor


def new_environment_on_docker(work: Path, runs: int) -> tuple[list[float], list[float]]:
    """(seconds to Healthy on local Docker, seconds of a pip-in-Docker build of the same set) per run."""
    from nbdeploy.builders.docker_builder import DEPS_REPOSITORY, docker_client
    from nbdeploy.builders.lock import uv_binary
    from nbdeploy.specs import LocalDeploymentConfig

    client = docker_client()
    uv_cache = subprocess.run([uv_binary(), "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    os.environ["UV_CACHE_DIR"] = uv_cache  # the host's package cache stays warm ...
    ours, anchor = [], []
    for i in range(runs):
        os.environ["XDG_CACHE_HOME"] = str(work / f"xdg-{i}")  # ... while locks made by image builds start empty
        before = {image.id for image in client.images.list(name=DEPS_REPOSITORY)}
        ws, model, script = fresh_workspace(work, f"docker-{i}")
        try:
            ours.append(timed_deploy(ws, f"newenv-docker-{i}", model, script, LocalDeploymentConfig(), docker=True))
        finally:  # the next run's environment is never seen either: its dependencies image goes
            for image in client.images.list(name=DEPS_REPOSITORY):
                if image.id not in before:
                    client.images.remove(image.id, force=True)
        anchor.append(pip_docker_anchor(client, work, i))
    return ours, anchor


def pip_docker_anchor(client: object, work: Path, run: int) -> float:
    """A single-stage build: ``python -m venv`` + ``pip install`` of the same set (no layer cache)."""
    from nbdeploy.builders.docker_builder import BuildSettings, assemble_context

    ca = BuildSettings.from_env().ca_bundle
    dockerfile = (f"FROM {BASE_IMAGE}\nCOPY ca.pem /tmp/ca.pem\n"
                  f"RUN python3 -m venv /venv && PIP_CERT=/tmp/ca.pem /venv/bin/pip install -q --no-cache-dir "
                  f"{' '.join(SERVER_REQUIREMENTS)} {' '.join(NEW_ENV_PACKAGES)}  # run {run} {time.time()}\n"
                  "LABEL nbdeploy.bench=pip-anchor\n")
    ctx = assemble_context({"Dockerfile": dockerfile, "ca.pem": ca.read_text() if ca else ""})
    started = time.perf_counter()
    try:
        for chunk in client.api.build(fileobj=ctx.fileobj, custom_context=True, tag="nbdeploy-bench/pip-anchor:latest",
                                      rm=True, forcerm=True, decode=True, nocache=True, pull=False):
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
    finally:
        ctx.close()
    seconds = time.perf_counter() - started
    client.images.remove("nbdeploy-bench/pip-anchor:latest", force=True)
    return seconds


def fresh_workspace(work: Path, name: str) -> tuple[nbdeploy.Workspace, nbdeploy.Model, Path]:
    ws = nbdeploy.Workspace.create(work / f"ws-{name}")
    model = nbdeploy.Model.register(work / "model.joblib", "diabetes", workspace=ws)
    return ws, model, work / "score.py"


def up_to_date_check(work: Path, runs: int) -> tuple[list[float], list[float]]:
    """(build_image's up-to-date decision, tar + hash of the whole context) for a bundle with a 500 MB model."""
    from nbdeploy.builders.bundle import create_bundle
    from nbdeploy.builders.docker_builder import (
        DEPS_REPOSITORY,
        BuildSettings,
        assemble_context,
        build_image,
        context_files,
        docker_client,
    )
    from nbdeploy.builders.dockerfile import ImageSpec

    client = docker_client()
    deps_before = {image.id for image in client.images.list(name=DEPS_REPOSITORY)}
    ws = nbdeploy.Workspace.create(work / "ws-big")
    big = work / "big.bin"
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 500)  # real bytes, 500 MB
    model = nbdeploy.Model.register(big, "big", workspace=ws)
    big.unlink()
    bundle = create_bundle(ws, [model], nbdeploy.InferenceConfig(str(work / "score.py")))
    spec = ImageSpec(base_image=BASE_IMAGE, model_dir=bundle.model_dir, labels={"nbdeploy.bench": "deploy"})
    settings = BuildSettings.from_env()
    repo = "nbdeploy-bench/uptodate"
    first = build_image(client, spec, bundle.path, repo, settings=settings, progress=lambda line: None)
    checks, anchors = [], []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            again = build_image(client, spec, bundle.path, repo, settings=settings, progress=lambda line: None,
                                bundle_digest=bundle.digest)
            checks.append(time.perf_counter() - started)
            assert again.cached and again.tag == first.tag
            started = time.perf_counter()
            ctx = assemble_context(context_files(settings.apply(spec), bundle.path))
            ctx.close()
            anchors.append(time.perf_counter() - started)
    finally:
        client.images.remove(first.tag, force=True)
        for image in client.images.list(name=DEPS_REPOSITORY):
            if image.id not in deps_before:
                client.images.remove(image.id, force=True)
    return checks, anchors


def speed_rows(work: Path, env_runs: int, docker: bool) -> list[tuple[str, str, str, str]]:
    med = statistics.median
    rows = []
    ours, pip_s = new_environment_on_process(work, env_runs)
    ratio = med(ours) / med(pip_s)
    rows += [
        ("new env (sklearn, pandas, joblib) -> Healthy, process", f"{med(ours):.2f} s", "<= 4 s",
         "yes" if med(ours) <= 4 else "NO"),
        ("  anchor: python -m venv + pip install, same set", f"{med(pip_s):.2f} s", "", ""),
        ("  ratio nbdeploy / anchor", f"{ratio:.2f}x", "<= 0.35x", "yes" if ratio <= 0.35 else "NO"),
    ]
    if docker:
        ours_d, pip_d = new_environment_on_docker(work, max(1, env_runs - 1))
        rows += [
            ("new env (sklearn, pandas, joblib) -> Healthy, local Docker", f"{med(ours_d):.2f} s", "<= 12 s",
             "yes" if med(ours_d) <= 12 else "NO"),
            ("  anchor: docker build, venv + pip install, same set", f"{med(pip_d):.2f} s", "", ""),
        ]
        checks, anchors = up_to_date_check(work, max(3, env_runs))
        rows += [
            ("redeploy, unchanged bundle, 500 MB model: up-to-date check", f"{med(checks):.3f} s", "<= 0.1 s",
             "yes" if med(checks) <= 0.1 else "NO"),
            ("  anchor: tar + hash of the whole build context", f"{med(anchors):.3f} s", "", ""),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env-runs", type=int, default=3, help="runs of the new-environment rows (Docker: one fewer)")
    parser.add_argument("--no-docker", action="store_true", help="leave out the local Docker rows")
    parser.add_argument("--speed-only", action="store_true", help="only issue 10's speed rows")
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
        rows: list[tuple[str, str, str, str]] = []
        load_before = os.getloadavg()[0]
        if not args.speed_only:
            rows += quickstart_rows(ws, model, ic, body, work, args.runs)
        rows += speed_rows(work, args.env_runs, not args.no_docker)
        print(f"benchmarks/deploy.py: median of {args.runs} runs ({args.env_runs} for new environments), "
              f"{os.cpu_count()} cores, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}, "
              f"Python {sys.version.split()[0]}")
        width = max(len(r[0]) for r in rows)
        print(f"| {'measure'.ljust(width)} | value | target | met |")
        print(f"|{'-' * (width + 2)}|-------|--------|-----|")
        for row in rows:
            print(f"| {row[0].ljust(width)} | {row[1]} | {row[2]} | {row[3]} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def quickstart_rows(ws: nbdeploy.Workspace, model: nbdeploy.Model, ic: nbdeploy.InferenceConfig, body: str,
                    work: Path, runs: int) -> list[tuple[str, str, str, str]]:
    deploy_s, first_score_s = [], []
    for i in range(runs):
        started = time.perf_counter()
        svc = nbdeploy.deploy(f"bench-{i}", [model], ic, workspace=ws)
        svc.wait_for_deployment()
        deploy_s.append(time.perf_counter() - started)
        svc.run(body)
        first_score_s.append(time.perf_counter() - started)
        svc.delete()

    reference_python = os.environ.get("NBDEPLOY_REFERENCE_PYTHON")
    ref_s = [reference_cold_start(reference_python, work, body) for _ in range(runs)] if reference_python else []

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
    for _ in range(runs):
        started = time.perf_counter()
        svc.update()
        update_s.append(time.perf_counter() - started)
    stop.set()
    thread.join(10)
    svc.delete()

    med = statistics.median
    return [
        ("deploy() -> Healthy (process)", f"{med(deploy_s):.2f} s", "< 2 s", "yes" if med(deploy_s) < 2 else "NO"),
        ("deploy() -> first 200 from /score", f"{med(first_score_s):.2f} s", "", ""),
        ("azmlinfsrv cold start -> first 200", f"{med(ref_s):.2f} s" if ref_s else "n/a (set NBDEPLOY_REFERENCE_PYTHON)", "", ""),
        ("ratio nbdeploy / azmlinfsrv (first 200)", f"{med(first_score_s) / med(ref_s):.2f}x" if ref_s else "n/a", "", ""),
        ("update() -> new revision serving", f"{med(update_s):.2f} s", "< 3 s", "yes" if med(update_s) < 3 else "NO"),
        ("failed requests during updates", f"{failed} of {failed + served}", "0", "yes" if failed == 0 else "NO"),
    ]


if __name__ == "__main__":
    main()
