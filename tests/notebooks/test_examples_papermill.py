"""Every example runs top to bottom under papermill (a real kernel, no widget frontend: plain lines);
a failing deploy makes papermill fail and the output notebook shows state, reason and log tail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import EXAMPLES, require

EXAMPLE_NAMES = ["quickstart", "migration-from-azureml-v1", "update-and-rollback"]


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
            parts.extend(str(v) for v in out.get("data", {}).values())
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_runs_under_papermill(name, tmp_path, monkeypatch):
    require("papermill")
    import papermill as pm

    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.delenv("NBDEPLOY_WIDGETS", raising=False)
    out = tmp_path / f"{name}.out.ipynb"
    nb = pm.execute_notebook(str(EXAMPLES / f"{name}.ipynb"), str(out), parameters={"workspace": str(tmp_path / "ws")},
                             cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    text = _outputs(nb)
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps(nb), "papermill must get plain output"
    if name != "migration-from-azureml-v1":
        assert "Healthy, scoring at http://127.0.0.1:" in text
    else:
        assert "Healthy" in text
    from nbdeploy.service import Webservice

    assert Webservice.list(tmp_path / "ws") == []  # every example cleans up


def test_example_notebooks_are_committed_without_outputs():
    import nbformat

    for name in EXAMPLE_NAMES:
        nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), name
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), name


@pytest.mark.slow
def test_failing_deploy_fails_papermill_and_the_output_shows_why(tmp_path):
    require("papermill")
    import nbformat
    import papermill as pm
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, cells=[
        new_code_cell(f"%load_ext nbdeploy\n%nbdeploy_workspace {tmp_path / 'ws'}\nopen('m.bin', 'w').write('x')\n"
                      "%register_model m.bin --name m"),
        new_code_cell("%%score_script score.py\ndef init():\n    raise RuntimeError('feature store unreachable')\n"
                      "def run(data):\n    return data"),
        new_code_cell("%deploy broken-svc --model m"),
        new_code_cell("print('never reached')"),
    ])
    src = tmp_path / "failing.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "failing.out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(src), str(out), cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert info.value.ename == "DeploymentFailed"
    text = _outputs(nbformat.read(out, as_version=4))
    assert "state:  Failed" in text and "reason:" in text and "feature store unreachable" in text and "log tail:" in text
    assert "never reached" not in text
    assert "site-packages" not in text, "no giant traceback"
    from nbdeploy.service import Webservice

    for svc in Webservice.list(tmp_path / "ws"):
        svc.delete()


@pytest.mark.slow
def test_a_notebook_that_fails_after_deploying_removes_its_temporary_service(tmp_path):
    require("papermill")
    import nbformat
    import papermill as pm
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, cells=[
        new_code_cell(f"%load_ext nbdeploy\n%nbdeploy_workspace {tmp_path / 'ws'}"),
        new_code_cell("%%score_script score.py\ndef init():\n    pass\ndef run(data):\n    return data"),
        new_code_cell("%deploy kept-svc\n%deploy temp-svc --temporary"),
        new_code_cell("raise RuntimeError('a later cell fails')"),
    ])
    src = tmp_path / "failing-later.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(pm.PapermillExecutionError, match="a later cell fails"):
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), kernel_name="python3",
                            progress_bar=False)
    from nbdeploy.service import Webservice

    assert [s.name for s in Webservice.list(tmp_path / "ws")] == ["kept-svc"]  # temp-svc went with the kernel
    Webservice("kept-svc", tmp_path / "ws").delete()
