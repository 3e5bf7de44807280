"""``%load_ext nbdeploy.v1``: the Azure ML SDK v1 alias (``import azureml.core`` works) plus nbdeploy's magics."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Install the ``azureml`` alias (see :mod:`nbdeploy.compat.v1`) and load ``%load_ext nbdeploy``'s magics."""
    from nbdeploy.compat import v1

    v1.install()
    ipython.extension_manager.load_extension("nbdeploy")


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the alias (the magics stay until ``%unload_ext nbdeploy``)."""
    from nbdeploy.compat import v1

    v1.uninstall()
