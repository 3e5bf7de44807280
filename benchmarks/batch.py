"""Batch inference: worker scaling, batch vs one request per row, and the journal's cost, in one run.

    python benchmarks/batch.py [--rows 200000] [--runs 3] [--sample 2000]

The sklearn fixture (Ridge on the diabetes features) scores a CSV with a v1 tabular script that returns the
input rows with a prediction column appended (the shape of Azure ML's ParallelRunStep examples), so the output
is as large as the input. Rows:

- 2 processes vs 1 (goal >= 1.7x on a 2-core machine): best-of-runs wall time of ``nbdeploy.batch.run`` including
  worker start-up, and the same minus a 1-row job's wall time (start-up and init()) as "steady state";
- local batch (2 processes) vs a client posting one row per request to a deployed process service
  (goal >= 20x): the per-request client scores ``--sample`` rows and is extrapolated to all rows;
- journal (fsync'd group commits) vs ``journal=False`` (goal <= 5% overhead), runs alternated.

Other people's load on the machine moves these numbers: rerun when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy
from nbdeploy.batch import run, score

SCRIPT = textwrap.dedent(
    """
    import os
    import joblib

    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

    def run(mini_batch):
        result = mini_batch.copy()
        result["prediction"] = model.predict(mini_batch.drop(columns=["id"]))
        return result
    """
)

SERVICE = textwrap.dedent(
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


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000, help="rows scored one request each (then extrapolated)")
    parser.add_argument("--mini-batch-size", default="1MB")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-batch-"))
    ws = nbdeploy.Workspace.create(work / "ws")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    joblib.dump(Ridge().fit(X, y), work / "model.joblib")
    model = nbdeploy.Model.register(work / "model.joblib", "diabetes", workspace=ws)
    frame = X.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", range(args.rows))
    frame.to_csv(work / "rows.csv", index=False)
    frame.head(1).to_csv(work / "one.csv", index=False)
    features = frame.drop(columns=["id"])
    features.to_csv(work / "features.csv", index=False)
    (work / "score_rows.py").write_text(SCRIPT)
    (work / "score.py").write_text(SERVICE)
    size_mb = (work / "rows.csv").stat().st_size / 1e6
    print(f"input: {args.rows:,} rows, {size_mb:.1f} MB CSV; mini_batch_size={args.mini_batch_size}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)

    counter = iter(range(10**6))

    def job(processes: int, journal: bool = True, source: str = "rows.csv") -> float:
        out = work / f"out-{next(counter)}"
        return timed(lambda: run(work / "score_rows.py", work / source, out, models=[model], workspace=ws,
                                 mini_batch_size=args.mini_batch_size, processes=processes, journal=journal))

    job(1, source="one.csv")  # warm the bundle and the page cache
    times: dict[str, list[float]] = {"p1": [], "p2": [], "p2-nojournal": [], "start1": [], "start2": []}
    for _ in range(args.runs):
        times["start1"].append(job(1, source="one.csv"))
        times["p1"].append(job(1))
        times["start2"].append(job(2, source="one.csv"))
        times["p2"].append(job(2))
        times["p2-nojournal"].append(job(2, journal=False))
    med = {k: min(v) for k, v in times.items()}  # best of runs: other people's load only ever adds time

    svc = nbdeploy.deploy("bench-batch", [model], nbdeploy.InferenceConfig(work / "score.py"), workspace=ws)
    svc.wait_for_deployment(timeout_sec=120)
    try:
        rows = features.head(args.sample).values.tolist()
        svc.run(json.dumps({"data": [rows[0]]}))
        per_request = timed(lambda: [svc.run(json.dumps({"data": [row]})) for row in rows]) / len(rows)
        via_service = timed(lambda: score(svc.name, work / "features.csv", work / "out-svc", workspace=ws,
                                          mini_batch_size=args.mini_batch_size, concurrency=4))
    finally:
        svc.delete()

    extrapolated = per_request * args.rows
    steady1, steady2 = med["p1"] - med["start1"], med["p2"] - med["start2"]
    overhead = (med["p2"] / med["p2-nojournal"] - 1) * 100
    rows_table = [
        ("local batch, 1 process (wall)", f"{med['p1']:.2f} s", f"{args.rows / med['p1']:,.0f} rows/s", ""),
        ("local batch, 2 processes (wall)", f"{med['p2']:.2f} s", f"{args.rows / med['p2']:,.0f} rows/s",
         f"{med['p1'] / med['p2']:.2f}x vs 1 process (goal >= 1.7x)"),
        ("  steady state (minus a 1-row job)", f"{steady2:.2f} s", f"{args.rows / steady2:,.0f} rows/s",
         f"{steady1 / steady2:.2f}x vs 1 process ({steady1:.2f} s)"),
        ("  start-up + init(), 1 / 2 processes", f"{med['start1']:.2f} / {med['start2']:.2f} s", "", ""),
        (f"one request per row ({args.sample:,} rows, extrapolated)", f"{extrapolated:.1f} s",
         f"{1 / per_request:,.0f} rows/s", f"local batch is {extrapolated / med['p2']:.1f}x faster (goal >= 20x)"),
        ("batch score through the service (4 in flight)", f"{via_service:.2f} s", f"{args.rows / via_service:,.0f} rows/s", ""),
        ("2 processes, journal=False", f"{med['p2-nojournal']:.2f} s", "",
         f"journal overhead {overhead:+.1f}% (goal <= 5%)"),
    ]
    widths = [max(len(r[i]) for r in rows_table) for i in range(4)]
    header = ("measure", "best of runs", "rate", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows_table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"\nruns: {args.runs} each (best of); load average now {os.getloadavg()[0]:.2f}; raw seconds: " + json.dumps({k: [round(x, 2) for x in v] for k, v in times.items()}))


if __name__ == "__main__":
    main()
