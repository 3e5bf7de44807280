"""Registry speed: register a 1 GiB file vs `cp` (same disk, same run), peak RSS, list/get over 10,000 versions,
and what a deployment pays for its own copy of a big model (bundle creation and deploy -> Healthy on the
process target, 1 GiB vs 1 MiB, with a hard link and `cp` of the blob as anchors).

    .venv/bin/python benchmarks/registry.py [--dir DIR] [--size-mib 1024] [--repeat 3] [--versions 10000]
                                            [--only register|query|bundle]

Prints one table. Every temporary file (the 1 GiB source, copies, workspaces) is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nbdeploy.registry import Model, store
from nbdeploy.registry.store import FileEntry, ModelRecord
from nbdeploy.workspace import Workspace

CHILD = """
import json, sys, time
from nbdeploy.registry import Model
from nbdeploy.workspace import Workspace
ws = Workspace(sys.argv[1])
t = time.perf_counter()
Model.register(sys.argv[2], "big", workspace=ws)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def timed_cmd(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - t


def register_in_child(ws: Path, src: Path) -> tuple[float, float, int]:
    """(seconds inside Model.register, child wall seconds, child peak RSS in bytes via wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws), str(src)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"register child failed with {proc.returncode}")
    return json.loads(out)["seconds"], wall, usage.ru_maxrss * 1024  # Linux: KiB


def bench(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def seed(ws: Workspace, versions: int, names: int) -> None:
    with ws.transaction() as conn:
        for i in range(versions):
            rec = ModelRecord(
                name=f"model-{i % names}", version=0, created_time="2026-01-01T00:00:00+00:00", created_by="bench",
                description=None, framework="ScikitLearn", framework_version=None, kind="file", root="m.pkl",
                size=1, digest="sha256:" + "0" * 64,
                tags={"team": f"t{i % 10}", "stage": "prod" if i % 100 == 0 else "dev", "idx": str(i)},
                properties={"auc": str(i % 7)},
            )
            store.insert_model(conn, rec, [FileEntry("m.pkl", "0" * 64, 1, 0o644)])


BUNDLE_SCORE = """
import os

def init():
    global size
    size = os.path.getsize(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.bin"))  # opens, not reads: deploy cost only

def run(raw_data):
    return size
# variant {variant}
"""


def bundle_rows(root: Path, size_mib: int, repeat: int) -> list[tuple[str, str, str, str, str]]:
    """Bundle creation and deploy -> Healthy with a ``size_mib`` model vs a 1 MiB one, in this run."""
    import nbdeploy
    from nbdeploy.builders.bundle import create_bundle
    from nbdeploy.registry.blobs import BlobStore, clone_file

    ws = Workspace.create(root / "ws-bundle")
    results: dict[int, dict[str, float]] = {}
    how = ""
    variant = 0
    for mib in (1, size_mib):
        src = root / "model.bin"
        block = os.urandom(1 << 20)
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(block)
        model = Model.register(src, f"m{mib}", workspace=ws)
        src.unlink()
        blob = BlobStore(ws).path(model.file_entries()[0].digest)
        times: dict[str, list[float]] = {k: [] for k in ("link", "cp", "clone", "bundle", "bundle2", "deploy", "deploy2")}

        def fresh_script() -> nbdeploy.InferenceConfig:
            nonlocal variant
            variant += 1
            script = root / f"score-{variant}.py"
            script.write_text(BUNDLE_SCORE.format(variant=variant))
            return nbdeploy.InferenceConfig(str(script))

        for _ in range(repeat):
            dst = root / "anchor.bin"
            t = time.perf_counter()
            os.link(blob, dst)
            times["link"].append(time.perf_counter() - t)
            dst.unlink()
            times["cp"].append(timed_cmd(["cp", str(blob), str(dst)]))
            dst.unlink()
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
            t = time.perf_counter()
            how = clone_file(blob, fd)
            times["clone"].append(time.perf_counter() - t)
            os.close(fd)
            dst.unlink()
            shutil.rmtree(ws.cache_dir, ignore_errors=True)  # no deploy copy yet: the first bundle of this model
            for key in ("bundle", "bundle2"):  # bundle2: the code changed, the model did not (an update)
                t = time.perf_counter()
                create_bundle(ws, [model], fresh_script())
                times[key].append(time.perf_counter() - t)
            shutil.rmtree(ws.cache_dir, ignore_errors=True)
            for key in ("deploy", "deploy2"):
                t = time.perf_counter()
                svc = nbdeploy.deploy(f"bench-{mib}-{variant}", [model], fresh_script(), workspace=ws)
                svc.wait_for_deployment()
                times[key].append(time.perf_counter() - t)
                assert svc.run("{}") == mib << 20
                svc.delete()
        results[mib] = {k: statistics.median(v) for k, v in times.items()}
    small, big = results[1], results[size_mib]
    rows = [
        (f"hard link of a {size_mib} MiB blob (main before the fix)", f"{big['link'] * 1e3:.2f} ms", "", "", "anchor"),
        (f"cp of the {size_mib} MiB blob", f"{big['cp']:.3f} s", "", "", "anchor"),
        (f"clone_file {size_mib} MiB ({how})", f"{big['clone']:.3f} s", f"{big['clone'] / big['cp']:.2f}x cp", "", ""),
        ("create_bundle 1 MiB, first bundle of the model", f"{small['bundle'] * 1e3:.1f} ms", "", "", ""),
        (f"create_bundle {size_mib} MiB, first bundle of the model", f"{big['bundle']:.3f} s",
         f"{big['bundle'] / small['bundle']:.1f}x 1 MiB", f"{big['bundle'] / big['cp']:.2f}x cp", ""),
        (f"create_bundle {size_mib} MiB, code changed (deploy copy shared)", f"{big['bundle2'] * 1e3:.1f} ms",
         f"{big['bundle2'] / small['bundle2']:.2f}x 1 MiB", "", ""),
        ("deploy -> Healthy, 1 MiB, first deploy of the model", f"{small['deploy']:.2f} s", "", "", ""),
        (f"deploy -> Healthy, {size_mib} MiB, first deploy of the model", f"{big['deploy']:.2f} s",
         f"{big['deploy'] / small['deploy']:.2f}x 1 MiB", "", "<= 1.5x 1 MiB"),
        (f"deploy -> Healthy, {size_mib} MiB, model deployed before", f"{big['deploy2']:.2f} s",
         f"{big['deploy2'] / small['deploy2']:.2f}x 1 MiB", "", "<= 1.5x 1 MiB"),
    ]
    shutil.rmtree(ws.path, ignore_errors=True)
    return rows


class _Skip(Exception):
    """A part left out with --only."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=".", help="where to put the temporary files (the disk under test)")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--only", choices=("register", "query", "bundle"), default=None)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-", dir=args.dir)).absolute()
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        if args.only in (None, "bundle"):
            rows += bundle_rows(root, args.size_mib, args.repeat)
        if args.only not in (None, "register"):
            raise _Skip
        src = root / "big.bin"
        block = os.urandom(16 << 20)
        with open(src, "wb") as f:
            for _ in range(max(1, args.size_mib // 16)):
                f.write(block)
        os.sync()
        cp, cps, reg, regwall, rss = [], [], [], [], []
        for r in range(args.repeat):
            dst = root / "copy.bin"
            cp.append(timed_cmd(["cp", str(src), str(dst)]))
            dst.unlink()
            t = time.perf_counter()
            subprocess.run(["cp", str(src), str(dst)], check=True)
            subprocess.run(["sync", str(dst)], check=True)
            cps.append(time.perf_counter() - t)
            dst.unlink()
            ws = Workspace.create(root / f"ws-{r}")
            inside, wall, peak = register_in_child(ws.path, src)
            reg.append(inside)
            regwall.append(wall)
            rss.append(peak)
            shutil.rmtree(ws.path)
        src.unlink()
        m_cp, m_cps, m_reg, m_wall = (statistics.median(x) for x in (cp, cps, reg, regwall))
        size = f"{args.size_mib} MiB"
        rows.append((f"cp {size}", f"{m_cp:.2f} s", "", "", "anchor"))
        rows.append((f"cp + sync {size}", f"{m_cps:.2f} s", "", "", "anchor (register fsyncs)"))
        rows.append((f"Model.register {size} (in child)", f"{m_reg:.2f} s", f"{m_reg / m_cp:.2f}x cp",
                     f"{m_reg / m_cps:.2f}x cp+sync", "<= 1.5x cp"))
        rows.append((f"register child process wall {size}", f"{m_wall:.2f} s", f"{m_wall / m_cp:.2f}x cp",
                     f"{m_wall / m_cps:.2f}x cp+sync", "(incl. interpreter start + imports)"))
        rows.append(("register peak RSS (child ru_maxrss)", f"{max(rss) / 2**20:.1f} MB", "", "", "< 150 MB"))
    except _Skip:
        pass
    try:
        if args.only not in (None, "query"):
            raise _Skip

        ws = Workspace.create(root / "ws-query")
        t = time.perf_counter()
        seed(ws, args.versions, names=100)
        rows.append((f"seed {args.versions} versions (one transaction)", f"{time.perf_counter() - t:.2f} s", "", "", ""))
        for label, kwargs in (
            ("list tags=['stage=prod'] (1% match)", {"tags": ["stage=prod"]}),
            ("list tags=['team=t3'] (10% match)", {"tags": ["team=t3"]}),
            ("list tags=['team=t3','stage=dev'] latest", {"tags": ["team=t3", "stage=dev"], "latest": True}),
            ("list tags=['team'] (100% match)", {"tags": ["team"]}),
        ):
            n = len(Model.list(workspace=ws, **kwargs))
            med, worst = bench(lambda kw=kwargs: Model.list(workspace=ws, **kw), 20)
            rows.append((f"{label}: {n} results", f"{med * 1e3:.1f} ms", f"max {worst * 1e3:.1f} ms", "", "< 100 ms"))
        med, worst = bench(lambda: Model.get("model-42", workspace=ws), 1000)
        rows.append(("Model.get latest (warm connection)", f"{med * 1e3:.3f} ms", f"max {worst * 1e3:.2f} ms", "", "< 5 ms"))
        med, worst = bench(lambda: Model.get("model-42", workspace=str(ws.path)), 200)
        rows.append(("Model.get latest (workspace given as a path)", f"{med * 1e3:.3f} ms", f"max {worst * 1e3:.2f} ms",
                     "", "< 5 ms"))
        med, worst = bench(lambda: Model.get("model-42", workspace=Workspace(ws.path)), 50)
        rows.append(("Model.get latest (new Workspace each call)", f"{med * 1e3:.3f} ms", f"max {worst * 1e3:.2f} ms",
                     "", "< 5 ms"))
    except _Skip:
        pass
    finally:
        shutil.rmtree(root, ignore_errors=True)

    headers = ("measurement", "value", "ratio / spread", "ratio", "target")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
