"""``--workspace/-w`` on every command, and ``workspace create PATH --default`` making later commands use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbdeploy.cli.main import main


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")


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
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return path


def _names(out: str) -> list[str]:
    return [line.split()[0] for line in out.strip().splitlines()[1:]]


def test_workspace_option_after_the_subcommand(tmp_path: Path, run, model_file: Path) -> None:
    ws = tmp_path / "ws"
    assert run("workspace", "create", str(ws), "--no-default")[0] == 0
    code, out, err = run("model", "register", "--workspace", str(ws), "-n", "m", "-p", str(model_file))
    assert code == 0, err
    assert "Registered m:1" in out
    assert _names(run("model", "list", "-w", str(ws))[1]) == ["m"]
    assert _names(run("model", "-w", str(ws), "list")[1]) == ["m"]  # on the group too
    assert _names(run("-w", str(ws), "model", "list")[1]) == ["m"]  # and before the subcommand, as before
    assert _names(run("model", "list")[1]) == []  # without it: the default workspace, which is another one


def test_workspace_option_after_the_subcommand_wins_over_the_environment(tmp_path: Path, run, model_file: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run("workspace", "create", str(a), "--no-default")
    run("workspace", "create", str(b), "--no-default")
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(a))
    assert run("model", "register", "-n", "m", "-p", str(model_file), "--workspace", str(b))[0] == 0
    assert _names(run("model", "list")[1]) == []
    assert _names(run("model", "list", "--workspace", str(b))[1]) == ["m"]
    assert json.loads(run("workspace", "show", "-o", "json", "-w", str(b))[1])["path"] == str(b)


def test_every_command_accepts_the_workspace_option(run) -> None:
    from nbdeploy.cli.main import SUBCOMMANDS, cli

    import click

    ctx = click.Context(cli)
    missing = []
    for name in SUBCOMMANDS:
        command = cli.get_command(ctx, name)
        if command is None:
            continue
        stack = [(name, command)]
        while stack:
            path, cmd = stack.pop()
            if not {"--workspace", "-w"} <= {o for p in cmd.params for o in getattr(p, "opts", [])}:
                missing.append(path)
            if isinstance(cmd, click.Group):
                stack += [(f"{path} {n}", c) for n, c in cmd.commands.items()]
    assert missing == []


def test_create_default_makes_later_commands_use_it(tmp_path: Path, run, model_file: Path) -> None:
    ws = tmp_path / "shared-ws"
    code, out, _ = run("workspace", "create", str(ws), "--default")
    assert code == 0 and "now use it" in out
    pointer = Path.cwd() / ".nbdeploy" / "config.json"
    assert json.loads(pointer.read_text()) == {"workspace": str(ws)}
    assert run("model", "register", "-n", "m", "-p", str(model_file))[0] == 0
    assert _names(run("model", "list", "-w", str(ws))[1]) == ["m"]  # it went to the new workspace
    (Path.cwd() / "sub").mkdir()
    import os

    os.chdir("sub")  # the pointer is found upward, like a .nbdeploy/ workspace
    info = json.loads(run("workspace", "show", "-o", "json")[1])
    assert info["path"] == str(ws) and info["found_by"] == ".nbdeploy/config.json upward" and info["models"] == 1
    assert not (tmp_path / "home" / ".nbdeploy").exists()  # nothing went to the per-user default


def test_create_without_default_prints_the_export_line(tmp_path: Path, run) -> None:
    code, out, _ = run("workspace", "create", str(tmp_path / "w"))  # stdin is not a terminal: no prompt
    assert code == 0
    assert f"export NBDEPLOY_WORKSPACE={tmp_path / 'w'}" in out and "--default" in out
    assert not (Path.cwd() / ".nbdeploy").exists()


def test_create_default_asks_when_interactive(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import click

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    asked = []
    monkeypatch.setattr(click, "confirm", lambda text, default=False: asked.append(text) or True)
    assert run("workspace", "create", str(tmp_path / "w"))[0] == 0
    assert asked and "default workspace" in asked[0]
    assert (Path.cwd() / ".nbdeploy" / "config.json").is_file()


def test_create_default_refuses_when_this_folder_holds_a_workspace(tmp_path: Path, run) -> None:
    assert run("workspace", "create", ".nbdeploy")[0] == 0
    code, _, err = run("workspace", "create", str(tmp_path / "other"), "--default")
    assert code == 1 and "is a workspace itself" in err
