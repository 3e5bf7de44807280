"""``import nbdeploy.compat.v1``: make ``import azureml.core`` (and friends) import nbdeploy's v1 compat layer.

Add it as the first line of an Azure ML SDK v1 notebook and leave the rest unchanged. It installs a meta path
finder that answers ``azureml`` and every ``azureml.<x>`` with the module ``nbdeploy.compat.azureml.<x>`` (the
same module object, so ``azureml.core.Model is nbdeploy.compat.azureml.core.Model``). It is off unless asked,
and it never shadows a real Azure ML SDK: when an ``azureml`` package is importable it refuses with
:class:`AzuremlInstalled` (an :class:`ImportError` and an :class:`~nbdeploy.errors.NbdeployError`).

``%load_ext nbdeploy.v1`` does the same and loads nbdeploy's magics.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from types import ModuleType
from typing import Any

from nbdeploy.errors import NbdeployError

log = logging.getLogger(__name__)

ALIAS = "azureml"
TARGET = "nbdeploy.compat.azureml"


class AzuremlInstalled(NbdeployError, ImportError):
    """A real ``azureml`` package is importable, so the alias refuses to shadow it."""


def real_azureml() -> str | None:
    """Where a real ``azureml`` package is on ``sys.path`` (with the distributions providing it), else None."""
    spec = importlib.machinery.PathFinder.find_spec(ALIAS)
    if spec is None:
        return None
    where = ", ".join(spec.submodule_search_locations or []) or str(spec.origin)
    try:
        from importlib.metadata import packages_distributions

        dists = sorted(set(packages_distributions().get(ALIAS, [])))
    except Exception:  # noqa: BLE001 - metadata is only used to name the culprit
        dists = []
    return f"{where}" + (f" (from {', '.join(dists)})" if dists else "")


def _refusal(where: str) -> AzuremlInstalled:
    return AzuremlInstalled(
        f"The Azure ML SDK is installed here ({where}), so nbdeploy will not alias 'azureml' to its compat layer "
        "(it never shadows a real package). Either run the notebook in an environment without azureml-* packages "
        "(pip uninstall azureml-core ...), or change its imports: azureml.core -> nbdeploy.compat.azureml.core."
    )


class _AliasLoader(importlib.abc.Loader):
    """Loads ``azureml.<x>`` as the already-imported module ``nbdeploy.compat.azureml.<x>``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module was executed by its own import."""


class AliasFinder(importlib.abc.MetaPathFinder):
    """Answers ``azureml`` and ``azureml.*`` with ``nbdeploy.compat.azureml`` and ``nbdeploy.compat.azureml.*``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        if fullname == ALIAS:
            where = real_azureml()
            if where is not None:
                raise _refusal(where)
        elif getattr(sys.modules.get(ALIAS), "__name__", None) != TARGET:
            return None  # a real azureml is imported: never interfere with its submodules
        target_name = TARGET + fullname[len(ALIAS) :]
        try:
            target_spec = importlib.util.find_spec(target_name)
        except ModuleNotFoundError:
            return None
        if target_spec is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, _AliasLoader(target_name), is_package=target_spec.submodule_search_locations is not None
        )


_finder: AliasFinder | None = None


def install() -> None:
    """Put the alias in place (idempotent); raise :class:`AzuremlInstalled` when a real azureml is importable."""
    global _finder
    existing = sys.modules.get(ALIAS)
    if existing is not None and getattr(existing, "__name__", None) != TARGET:
        raise _refusal(str(getattr(existing, "__file__", None) or list(getattr(existing, "__path__", []))))
    where = real_azureml()
    if where is not None:
        raise _refusal(where)
    if _finder is None or _finder not in sys.meta_path:
        _finder = AliasFinder()
        sys.meta_path.insert(0, _finder)
        log.info("azureml.* now imports nbdeploy.compat.azureml.*")


def uninstall() -> None:
    """Remove the alias and forget the ``azureml.*`` modules it provided."""
    global _finder
    if _finder is not None and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith(TARGET):
            del sys.modules[name]


def installed() -> bool:
    return _finder is not None and _finder in sys.meta_path


install()

__all__ = ["AliasFinder", "AzuremlInstalled", "install", "installed", "real_azureml", "uninstall"]
