"""Modules old entry scripts import, registered in ``sys.modules`` when no real package provides them.

- ``azureml.contrib.services.aml_request`` (``rawhttp``, ``AMLRequest``)
- ``azureml.contrib.services.aml_response`` (``AMLResponse``)
- ``azureml.core.model`` (``Model.get_model_path``)
- ``nbdeploy_batching`` (``nbdeploy_batch``), always (our own name)
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types

from . import batching, model_path, request, response

log = logging.getLogger("nbdeploy.server")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _package(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so submodules resolve through sys.modules
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_package(parent), child, module)
    return module


def _alias(name: str, source: types.ModuleType) -> None:
    parent, _, child = name.rpartition(".")
    sys.modules[name] = source
    if parent:
        setattr(_package(parent), child, source)


def register() -> list[str]:
    """Register every shim whose real package is not importable; returns the names registered."""
    done = []
    need_services = not _importable("azureml.contrib.services")
    need_core = not _importable("azureml.core")  # checked before any placeholder package exists
    if need_services:
        _alias("azureml.contrib.services.aml_request", request)
        _alias("azureml.contrib.services.aml_response", response)
        done += ["azureml.contrib.services.aml_request", "azureml.contrib.services.aml_response"]
    if need_core:
        _alias("azureml.core.model", model_path)
        done.append("azureml.core.model")
    sys.modules.setdefault("nbdeploy_batching", batching)
    done.append("nbdeploy_batching")
    if done:
        log.debug("Registered import shims: %s", ", ".join(done))
    return done


def rawhttp_requested(func: object) -> bool:
    """Whether ``run`` was decorated with our ``@rawhttp`` or a real package's (module-level flag)."""
    if getattr(func, "__nbdeploy_rawhttp__", False):
        return True
    real = sys.modules.get("azureml.contrib.services.aml_request")
    return real is not None and real is not request and bool(getattr(real, "_rawHttpRequested", False))
