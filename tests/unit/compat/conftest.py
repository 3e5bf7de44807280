from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the real HOME, NBDEPLOY_WORKSPACE or a .nbdeploy/ above the checkout; the alias is removed after."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    import sys

    if "nbdeploy.compat.v1" in sys.modules:
        sys.modules["nbdeploy.compat.v1"].uninstall()


def fake_azureml_distribution(root: Path) -> Path:
    """A folder holding an ``azureml`` package and an ``azureml-core`` dist-info, as pip would install it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "azureml").mkdir()
    (root / "azureml" / "__init__.py").write_text("REAL = True\n")
    (root / "azureml" / "core").mkdir()
    (root / "azureml" / "core" / "__init__.py").write_text("VERSION = '1.61.0'\n")
    dist = root / "azureml_core-1.61.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: azureml-core\nVersion: 1.61.0\n")
    (dist / "top_level.txt").write_text("azureml\n")
    (dist / "RECORD").write_text("azureml/__init__.py,,\nazureml/core/__init__.py,,\n")
    return root
