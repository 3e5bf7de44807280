"""nbdeploy quickstart: train, register, deploy on the subprocess target, score, update, clean up.

Run it with ``bash scripts/quickstart.sh`` (or ``python examples/quickstart.py`` in an environment with
nbdeploy and scikit-learn). No Docker, no network: the dataset ships with scikit-learn.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy

SCORE_PY = textwrap.dedent(
    """
    import json, os
    import joblib

    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        return {"predictions": model.predict(data).tolist()}
    """
)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nbdeploy-quickstart-"))
    workspace = nbdeploy.Workspace.create(work / "workspace")
    print(f"workspace: {workspace.path}")

    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge(alpha=0.5).fit(X, y), work / "model.joblib")
    model = nbdeploy.Model.register(work / "model.joblib", "diabetes", tags={"area": "health"}, workspace=workspace)
    print(f"registered {model.id} ({model.size} bytes)")

    (work / "score.py").write_text(SCORE_PY)
    # pins what score.py imports (joblib) plus scikit-learn, which unpickling the model needs
    env = nbdeploy.Environment.from_current_kernel("diabetes-env", entry_script=work / "score.py", packages=["scikit-learn"])
    print(f"environment pins: {', '.join(env.pip_packages)}")
    inference_config = nbdeploy.InferenceConfig(entry_script=str(work / "score.py"), environment=env)

    started = time.perf_counter()
    service = nbdeploy.deploy("diabetes-svc", [model], inference_config, nbdeploy.ProcessDeploymentConfig(), workspace=workspace)
    try:
        service.wait_for_deployment(show_output=True)
        print(f"Healthy in {time.perf_counter() - started:.2f}s at {service.scoring_uri}")

        answer = service.run(json.dumps({"data": X[:3].tolist()}))
        print(f"predictions for 3 patients: {[round(p, 1) for p in answer['predictions']]}")

        model2 = nbdeploy.Model.register(work / "model.joblib", "diabetes", tags={"area": "health", "retrained": "yes"}, workspace=workspace)
        service.update(models=[model2], show_output=True)
        print(f"now serving revision {service.revision} with {service.models}")
        print(f"answer after the update: {service.run(json.dumps({'data': X[:1].tolist()}))}")
    finally:
        service.delete()
        shutil.rmtree(work, ignore_errors=True)
        print("deleted the service and the scratch workspace; done.")


if __name__ == "__main__":
    main()
