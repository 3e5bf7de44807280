"""Image size and rebuild speed of the scikit-learn example on the local Docker engine.

Prints tables: the image's size above its base plus its Python dependencies (and ``docker history``, which
shows the model layer last), rebuild + Healthy after a model-only and a score.py-only change, and a deploy from
the cached image to Healthy. Anchor, measured in the same run: a naive single-stage Dockerfile
(``COPY . .`` then ``pip install``) rebuilt after the same change.

Last, an update under load in each network mode of the local target: a client scores in a loop (one keep-alive
connection, one retry when a draining server closed it, as ``Webservice.run`` does) while a score.py change is
built, started beside the serving container, promoted and the old one retired. The table gives the requests,
the failed ones, the longest gap between two answers and the promote step's time.

Needs the engine and base image: ``bash tests/engines/docker.sh up``. Run:
``.venv/bin/python benchmarks/build.py`` (``--keep`` keeps the images, ``--update-only`` runs only the last part).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nbdeploy.builders.bundle import Bundle
from nbdeploy.builders.docker_builder import docker_client, server_package_files
from nbdeploy.builders.dockerfile import SERVER_REQUIREMENTS
from nbdeploy.specs import Environment, LocalDeploymentConfig
from nbdeploy.targets.base import RevisionSpec, State
from nbdeploy.targets.local_docker import LocalDockerTarget
from nbdeploy.targets.process import probe
from nbdeploy.workspace import Workspace

BASE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
SERVICE = "bench-build"
NAIVE_REPO = "nbdeploy-bench/naive"
SCORE_PY = """\
import json, os
import joblib

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()  # {tag}
"""
NAIVE_DOCKERFILE = f"""\
FROM {BASE}
WORKDIR /app
COPY . .
RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
LABEL nbdeploy.bench=naive
ENV AML_APP_ROOT=/app AZUREML_MODEL_DIR=/app/azureml-models/diabetes/1 PYTHONPATH=/app/server
CMD ["/venv/bin/python", "-m", "nbdeploy_server", "--host", "0.0.0.0", "--port", "5001", \
"--entry-script", "/app/score.py", "--model-dir", "/app/azureml-models/diabetes/1"]
"""


def train(path: Path, alpha: float) -> None:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge(alpha=alpha).fit(x, y), path)


def requirements() -> list[str]:
    import joblib
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}"]


def write_app(root: Path, alpha: float, tag: str) -> None:
    (root / "azureml-models" / "diabetes" / "1").mkdir(parents=True, exist_ok=True)
    (root / "score.py").write_text(SCORE_PY.format(tag=tag))
    train(root / "azureml-models" / "diabetes" / "1" / "model.joblib", alpha)


def bundle_of(root: Path) -> Bundle:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())).hexdigest()
    return Bundle(path=root, digest=digest, code_digest=digest, models_digest=digest, entry_script="score.py",
                  model_dir="azureml-models/diabetes/1", source_dir=None, model_ids=("diabetes:1",))


def environment() -> Environment:
    env = Environment("sklearn-env")
    env.docker.base_image = BASE
    for line in requirements():
        env.python.conda_dependencies.add_pip_package(line)
    return env


def wait_healthy(url: str, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if probe(url + "/health/ready", 1.0)[0]:
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


class Ours:
    def __init__(self, workspace: Workspace, app: Path) -> None:
        self.target = LocalDockerTarget(workspace)
        self.target.progress = lambda line: None
        self.app = app
        self.revision = 0
        self.handle: dict[str, Any] | None = None

    def deploy(self) -> tuple[float, float, bool]:
        """(build seconds, seconds to Healthy after the build, build cached)."""
        if self.handle:
            self.target.stop(self.handle)
        self.revision += 1
        spec = RevisionSpec(SERVICE, self.revision, bundle_of(self.app), LocalDeploymentConfig(), environment())
        t0 = time.perf_counter()
        self.handle = self.target.start(spec)
        started = time.perf_counter()
        while (status := self.target.status(self.handle)).state == State.TRANSITIONING:
            time.sleep(0.05)
        if status.state != State.HEALTHY:
            raise RuntimeError(f"{status.state}: {status.reason}\n{status.evidence}")
        return started - t0, time.perf_counter() - started, False


class Naive:
    def __init__(self, client: Any, app: Path) -> None:
        self.client, self.app = client, app
        self.container: Any = None

    def deploy(self) -> tuple[float, float]:
        ctx = io.BytesIO()
        with tarfile.open(fileobj=ctx, mode="w") as tar:
            tar.add(self.app, arcname=".")
            for name, text in (("Dockerfile", NAIVE_DOCKERFILE),
                               ("requirements.txt", "\n".join([*SERVER_REQUIREMENTS, *requirements()]) + "\n")):
                info = tarfile.TarInfo(name)
                info.size = len(text.encode())
                tar.addfile(info, io.BytesIO(text.encode()))
            for arc, path in server_package_files().items():
                tar.add(path, arcname=f"server/{arc}")
        ctx.seek(0)
        t0 = time.perf_counter()
        for chunk in self.client.api.build(fileobj=ctx, custom_context=True, tag=f"{NAIVE_REPO}:latest", rm=True,
                                           decode=True, buildargs=_proxy_args()):
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
        built = time.perf_counter()
        if self.container is not None:
            self.container.remove(force=True)
        self.container = self.client.containers.run(f"{NAIVE_REPO}:latest", detach=True, ports={"5001/tcp": ("127.0.0.1", None)},
                                                    labels={"nbdeploy.bench": "naive"})
        self.container.reload()
        port = self.container.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"]
        return built - t0, wait_healthy(f"http://127.0.0.1:{port}")


class UpdateUnderLoad:
    """One update of the local target while a client scores in a loop (the update protocol of nbdeploy.service)."""

    def __init__(self, workspace: Workspace, app: Path, network_mode: str) -> None:
        self.target = LocalDockerTarget(workspace)
        self.target.progress = lambda line: None
        self.app, self.network_mode = app, network_mode
        self.ok, self.failed, self.times = 0, [], []
        self._stop = threading.Event()

    def _spec(self, revision: int) -> RevisionSpec:
        config = LocalDeploymentConfig(network_mode=self.network_mode)
        return RevisionSpec(f"{SERVICE}-{self.network_mode}", revision, bundle_of(self.app), config, environment())

    def _wait(self, handle: dict[str, Any]) -> None:
        while (status := self.target.status(handle)).state in (State.TRANSITIONING, State.UNHEALTHY):
            time.sleep(0.05)
        if status.state != State.HEALTHY:
            raise RuntimeError(f"{status.state}: {status.reason}\n{status.evidence}")

    def _loop(self, url: str, body: str) -> None:
        import httpx

        with httpx.Client(trust_env=False, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    try:
                        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
                    except httpx.RemoteProtocolError:  # a keep-alive connection closed by the draining revision
                        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
                    response.raise_for_status()
                    self.ok += 1
                    self.times.append(time.perf_counter())
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))

    def run(self) -> dict[str, Any]:
        old = self.target.start(self._spec(1))
        new: dict[str, Any] | None = None
        try:
            self._wait(old)
            from sklearn.datasets import load_diabetes

            body = json.dumps({"data": load_diabetes(return_X_y=True)[0][:1].tolist()})
            thread = threading.Thread(target=self._loop, args=(self.target.scoring_uri(old), body), daemon=True)
            thread.start()
            time.sleep(0.5)
            (self.app / "score.py").write_text(SCORE_PY.format(tag=f"update-{self.network_mode}"))
            t0 = time.perf_counter()
            new = self.target.start(self._spec(2), previous=old)
            self._wait(new)
            t1 = time.perf_counter()
            new = self.target.promote(new, old)
            t2 = time.perf_counter()
            self.target.retire(old, new)
            t3 = time.perf_counter()
            time.sleep(0.5)
            self._stop.set()
            thread.join(30)
        finally:
            self._stop.set()
            for handle in (old, new):
                if handle:
                    self.target.stop(handle)
        gaps = [b - a for a, b in zip(self.times, self.times[1:])]
        return {"network_mode": self.network_mode, "requests": self.ok + len(self.failed), "failed": len(self.failed),
                "longest_gap_ms": max(gaps, default=0.0) * 1000, "promote_ms": (t2 - t1) * 1000,
                "update_s": t3 - t0, "first_failure": self.failed[0] if self.failed else ""}


def update_table(tmp: Path) -> list[dict[str, Any]]:
    results = []
    for mode in ("host", "bridge"):
        app = tmp / f"update-{mode}"
        write_app(app, alpha=1.0, tag="v1")
        results.append(UpdateUnderLoad(Workspace.create(tmp / f"ws-{mode}"), app, mode).run())
    print("\n## update() under load (local target; one client scoring in a loop)\n")
    print("| network mode | requests | failed | longest gap between answers | promote step | build + start + promote + retire |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['network_mode']} | {r['requests']} | {r['failed']} | {r['longest_gap_ms']:.0f} ms "
              f"| {r['promote_ms']:.0f} ms | {r['update_s']:.1f} s |")
    return results


def _created(image: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(image.attrs["Created"][:26].rstrip("Z") + "+00:00").timestamp()


def _proxy_args() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n:.0f} B"


def history_table(client: Any, tag: str) -> list[str]:
    rows = []
    for entry in client.api.history(tag):
        created_by = entry["CreatedBy"].replace("/bin/sh -c #(nop) ", "").strip()
        rows.append(f"| {_size(entry['Size'])} | `{created_by[:90]}` |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the images and containers")
    parser.add_argument("--update-only", action="store_true", help="only the update-under-load table")
    args = parser.parse_args()
    client = docker_client()
    tmp = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-"))
    if args.update_only:
        started = time.time() - 1
        try:
            print(json.dumps({"update": update_table(tmp)}), file=sys.stderr)
        finally:
            _remove_images(client, started, args.keep)
            shutil.rmtree(tmp, ignore_errors=True)
        return
    ours_app, naive_app = tmp / "ours", tmp / "naive"
    for app in (ours_app, naive_app):
        write_app(app, alpha=1.0, tag="v1")
    ours = Ours(Workspace.create(tmp / "ws"), ours_app)
    naive = Naive(client, naive_app)
    rows: list[tuple[str, float, float, float, float]] = []
    started = time.time() - 1
    try:
        print(f"# benchmarks/build.py: scikit-learn example on {BASE}", file=sys.stderr)
        cold_build, cold_healthy, _ = ours.deploy()
        naive_cold = naive.deploy()
        rows.append(("cold build (empty cache for this app)", cold_build, cold_healthy, *naive_cold))
        for label, change in (("model only changed", lambda a: train(a / "azureml-models/diabetes/1/model.joblib", 2.0)),
                              ("score.py only changed", lambda a: (a / "score.py").write_text(SCORE_PY.format(tag="v2")))):
            change(ours_app)
            change(naive_app)
            b, h, _ = ours.deploy()
            rows.append((label, b, h, *naive.deploy()))
        b, h, _ = ours.deploy()  # unchanged inputs: the image is reused by content digest
        rows.append(("deploy from cached image", b, h, float("nan"), float("nan")))

        tag = ours.handle["image"] if ours.handle else ""
        image = client.images.get(tag)
        base = client.images.get(BASE)
        hist = client.api.history(tag)
        venv = next(e["Size"] for e in hist if "COPY dir" in e["CreatedBy"] and e["Size"] > 5e6)
        above = image.attrs["Size"] - base.attrs["Size"] - venv
        naive_size = client.images.get(f"{NAIVE_REPO}:latest").attrs["Size"]

        print("\n## Rebuild and deploy (seconds; ratio = naive / nbdeploy, total)\n")
        print("| change | nbdeploy build | nbdeploy to Healthy | nbdeploy total "
              "| naive build | naive to Healthy | naive total | ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, b, h, nb, nh in rows:
            total, ntotal = b + h, nb + nh
            ratio = f"{ntotal / total:.1f}x" if ntotal == ntotal else "-"
            naive_cells = f"{nb:.1f} | {nh:.1f} | {ntotal:.1f}" if ntotal == ntotal else "- | - | -"
            print(f"| {label} | {b:.1f} | {h:.1f} | {total:.1f} | {naive_cells} | {ratio} |")
        print("\n## Size (MB)\n")
        print("| base | venv layer (server + user deps) | above base + deps | total | naive image total |")
        print("|---:|---:|---:|---:|---:|")
        sizes = (base.attrs["Size"], venv, above, image.attrs["Size"], naive_size)
        print("| " + " | ".join(f"{n / 1e6:.2f}" for n in sizes) + " |")
        print(f"\n## docker history {tag} (newest first; the model layer is the last with content)\n")
        print("| size | created by |\n|---:|---|")
        print("\n".join(history_table(client, tag)))
        updates = update_table(tmp)
        print(json.dumps({"rows": rows, "above_base_deps_mb": above / 1e6, "update": updates}), file=sys.stderr)
    finally:
        if not args.keep:
            if ours.handle:
                ours.target.stop(ours.handle)
            if naive.container is not None:
                naive.container.remove(force=True)
        _remove_images(client, started, args.keep)
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_images(client: Any, started: float, keep: bool) -> None:
    if keep:
        return
    leftovers = client.images.list(filters={"label": "nbdeploy.bench"})
    for repo in (SERVICE, f"{SERVICE}-host", f"{SERVICE}-bridge"):
        leftovers += client.images.list(name=f"nbdeploy/{repo}")
    leftovers += [i for i in client.images.list(filters={"dangling": True, "label": "nbdeploy.stage"})
                  if _created(i) >= started]
    for image in leftovers:
        try:
            client.images.remove(image.id, force=True)
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    main()
