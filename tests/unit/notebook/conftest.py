"""A real IPython shell with ``%load_ext nbdeploy`` and a scratch workspace per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    shell = get_ipython() or start_ipython()
    shell.run_line_magic("load_ext", "nbdeploy")
    from nbdeploy.notebook._session import Session

    shell.magics_manager.registry["NbdeployMagics"].session = Session()  # a fresh kernel's state
    shell.run_line_magic("nbdeploy_workspace", str(tmp_path / "ws"))
    yield shell
    from nbdeploy.service import Webservice

    for svc in Webservice.list(tmp_path / "ws"):  # never leave a server running
        svc.delete()
    os.environ.pop("NBDEPLOY_WORKSPACE", None)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"not really a model")
    return path
