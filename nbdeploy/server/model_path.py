"""``azureml.core.model.Model.get_model_path`` for old scripts, resolving the v1 container layout.

``$AML_APP_ROOT/azureml-models/<name>/<version>/<the single entry>``; version ``None`` picks the highest
integer version; falls back to ``./<name>``.
"""

from __future__ import annotations

import os


class ModelNotFoundException(Exception):
    """No model folder matched (same name as azureml-core's exception)."""


class WebserviceException(Exception):
    """azureml-core's generic error type, for scripts that catch it."""


def _models_dir() -> str:
    return os.path.join(os.environ.get("AML_APP_ROOT", os.getcwd()), "azureml-models")


class Model:
    """The one ``Model`` member scoring scripts call inside a container."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: object = None) -> str:
        """Path of the registered file or folder of ``model_name`` (at ``version``, else the latest)."""
        if version is not None and not isinstance(version, int):
            raise WebserviceException("version should be an int")
        root = os.path.join(_models_dir(), model_name)
        if os.path.isdir(root):
            if version is None:
                versions = [int(v) for v in os.listdir(root) if v.isdigit()]
                version = max(versions) if versions else None
            if version is not None:
                vdir = os.path.join(root, str(version))
                if os.path.isdir(vdir):
                    entries = os.listdir(vdir)
                    if len(entries) != 1:
                        raise ModelNotFoundException(
                            f"Expected exactly one entry in {vdir}, found {len(entries)}")
                    return os.path.join(vdir, entries[0])
        local = os.path.join(os.getcwd(), model_name)
        if os.path.exists(local):
            return local
        raise ModelNotFoundException(f"Model not found in cache or in root at {root}")
