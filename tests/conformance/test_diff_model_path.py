"""``azureml.core.model.Model.get_model_path`` (nbdeploy's shim, azureml-core under azmlinfsrv): the path for
the v1 layout ``azureml-models/<name>/<version>/<entry>``, and the exception class when nothing matches."""

import pytest

from .harness import SCRIPTS, start
from .test_differential import TEXT, same

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model_paths")
    app = tmp / "app"
    for version in (1, 2):
        folder = app / "azureml-models" / "my_model" / str(version)
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(str(version))
    (app / "azureml-models" / "two_files" / "1").mkdir(parents=True)
    for name in ("a.txt", "b.txt"):
        (app / "azureml-models" / "two_files" / "1" / name).write_text("")
    servers = []
    try:
        for kind in ("ours", "reference"):
            servers.append(start(kind, SCRIPTS / "model_paths.py", tmp, env={"AML_APP_ROOT": str(app)}))
        yield servers[0], servers[1]
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("ask", ["my_model", "my_model:1", "my_model:2",
                                 "my_model:7",  # a version that does not exist: WebserviceException
                                 "absent", "absent:3", "two_files", "two_files:1"])
def test_get_model_path(pair, ask):
    a, _ = same(pair, "POST", "/score", ask.encode(), TEXT)
    assert a.status == 200
