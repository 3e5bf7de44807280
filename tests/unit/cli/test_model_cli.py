"""The model, workspace and gc commands through the real entry point (``nbdeploy.cli.main.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbdeploy.cli.main import main
from nbdeploy.registry import Model, record_usage
from nbdeploy.workspace import Workspace


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def ws(tmp_path: Path, run) -> Path:
    code, out, _ = run("workspace", "create", str(tmp_path / "ws"))
    assert code == 0 and "Created workspace" in out
    return tmp_path / "ws"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    p = tmp_path / "model.pkl"
    p.write_bytes(b"weights")
    return p


def test_register_list_show(ws: Path, src: Path, run) -> None:
    code, out, _ = run("-w", str(ws), "model", "register", "-n", "diabetes", "-p", str(src), "--tag", "area=health",
                       "--property", "auc=0.9", "--description", "d", "--framework", "ScikitLearn",
                       "--framework-version", "1.5")
    assert code == 0 and "Registered diabetes:1" in out
    run("-w", str(ws), "model", "register", "-n", "diabetes", "-p", str(src), "--tag", "area=other")
    code, out, _ = run("-w", str(ws), "model", "list", "--tag", "area=health")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "VERSION"] and len(lines) == 2 and lines[1].split()[:2] == ["diabetes", "1"]
    code, out, _ = run("-w", str(ws), "model", "list", "--latest", "-o", "json")
    assert [m["id"] for m in json.loads(out)] == ["diabetes:2"]
    code, out, _ = run("-w", str(ws), "model", "list", "--property", "auc", "-o", "json")
    assert [m["id"] for m in json.loads(out)] == ["diabetes:1"]
    code, out, _ = run("-w", str(ws), "model", "show", "diabetes:1", "-o", "json")
    data = json.loads(out)
    assert (data["framework"], data["frameworkVersion"], data["tags"]) == ("ScikitLearn", "1.5", {"area": "health"})
    code, out, _ = run("-w", str(ws), "model", "show", "diabetes")
    assert code == 0 and "diabetes:2" in out and "model.pkl" in out


def test_env_var_selects_the_workspace(ws: Path, src: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(ws))
    assert run("model", "register", "-n", "m", "-p", str(src))[0] == 0
    assert [m.id for m in Model.list(workspace=ws)] == ["m:1"]
    code, out, _ = run("workspace", "show")
    assert code == 0 and str(ws) in out and "NBDEPLOY_WORKSPACE" in out and "1 version" in out


def test_download(ws: Path, src: Path, run, tmp_path: Path) -> None:
    run("-w", str(ws), "model", "register", "-n", "m", "-p", str(src))
    code, out, _ = run("-w", str(ws), "model", "download", "m:1", "-t", str(tmp_path / "out"))
    assert code == 0 and out.strip() == str(tmp_path / "out" / "model.pkl")
    assert (tmp_path / "out" / "model.pkl").read_bytes() == b"weights"
    code, _, err = run("-w", str(ws), "model", "download", "m", "-t", str(tmp_path / "out"))
    assert code == 1 and err.startswith("Error: ") and "exist" in err
    assert run("-w", str(ws), "model", "download", "m", "-t", str(tmp_path / "out"), "--exist-ok")[0] == 0


def test_update_and_delete(ws: Path, src: Path, run) -> None:
    run("-w", str(ws), "model", "register", "-n", "m", "-p", str(src), "--tag", "old=1")
    code, _, _ = run("-w", str(ws), "model", "update", "m:1", "--add-tag", "new=2", "--remove-tag", "old",
                     "--add-property", "p=q")
    assert code == 0
    m = Model.get("m", 1, workspace=ws)
    assert (m.tags, m.properties) == ({"new": "2"}, {"p": "q"})
    code, _, err = run("-w", str(ws), "model", "update", "m:1", "--add-property", "p=changed")
    assert code == 1 and "cannot be changed" in err
    record_usage("svc", ["m:1"], workspace=ws)
    code, _, err = run("-w", str(ws), "model", "delete", "m:1")
    assert code == 1 and "svc" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert run("-w", str(ws), "model", "delete", "m:1", "--force")[0] == 0
    assert Model.list(workspace=ws) == []


@pytest.mark.parametrize("argv, message", [
    (["model", "register", "-n", "bad name", "-p", "{src}"], "Invalid model name"),
    (["model", "register", "-n", "m", "-p", "{src}", "--tag", "novalue"], "Malformed tag"),
    (["model", "register", "-n", "m", "-p", "{src}", "--tag", "=v"], "Malformed tag"),
    (["model", "register", "-n", "m", "-p", ""], "empty"),
    (["model", "register", "-n", "m", "-p", "{missing}"], "does not exist"),
    (["model", "show", "nope"], "No model named 'nope'"),
    (["model", "show", "m:7"], "Existing versions of 'm': 1"),
    (["model", "show", "m:x"], "positive integers"),
    (["model", "delete", "m"], "NAME:VERSION"),
])
def test_bad_input_is_one_line_and_exit_1(ws: Path, src: Path, run, tmp_path: Path, argv, message) -> None:
    run("-w", str(ws), "model", "register", "-n", "m", "-p", str(src))
    argv = [a.format(src=src, missing=tmp_path / "missing.pkl") for a in argv]
    code, out, err = run("-w", str(ws), *argv)
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and message in err and len(err.strip().splitlines()) == 1


def test_not_a_workspace(tmp_path: Path, run) -> None:
    (tmp_path / "plain").mkdir()
    code, _, err = run("-w", str(tmp_path / "plain"), "model", "list")
    assert code == 1 and "not an nbdeploy workspace" in err


def test_workspace_show_on_uncreated_default(run, tmp_path: Path) -> None:
    code, out, _ = run("workspace", "show", "-o", "json")
    assert code == 0
    info = json.loads(out)
    assert (info["exists"], info["model_versions"], info["found_by"]) == (False, 0, "home default")
    assert not (tmp_path / "home" / ".nbdeploy").exists()


def test_gc_command(ws: Path, src: Path, run) -> None:
    run("-w", str(ws), "model", "register", "-n", "m", "-p", str(src))
    (ws / "tmp" / "blob-stale").write_bytes(b"x")
    Model.get("m", workspace=ws)  # still referenced
    code, out, _ = run("-w", str(ws), "gc", "--dry-run")
    assert code == 0 and "Would remove 0 blob(s)" in out and "1 temporary" in out
    assert (ws / "tmp" / "blob-stale").exists()
    code, out, _ = run("-w", str(ws), "gc")
    assert code == 0 and "Removed 0 blob(s)" in out and "1 blob(s) in use" in out
    assert not (ws / "tmp" / "blob-stale").exists()
    Workspace(ws)
