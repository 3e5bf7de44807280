from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nbdeploy.workspace import Workspace


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the real HOME, NBDEPLOY_WORKSPACE or a .nbdeploy/ above the checkout."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    def make(rel: str, data: bytes = b"model-bytes", mode: int | None = None) -> Path:
        p = tmp_path / "src" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if mode is not None:
            os.chmod(p, mode)
        return p

    return make
