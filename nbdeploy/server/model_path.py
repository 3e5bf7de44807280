"""``azureml.core.model.Model.get_model_path`` for old scripts, resolving the v1 container layout.

``$AML_APP_ROOT/azureml-models/<name>/<version>/<the single entry>``; version ``None`` picks the highest
integer version; falls back to ``./<name>``. The exception classes are azureml-core's: a missing model is
``ModelNotFoundException`` when no version was asked for, ``WebserviceException`` (with the same message)
when one was; a version folder without exactly one entry is a ``WebserviceException``.
"""

from __future__ import annotations

import os


class WebserviceException(Exception):
    """azureml-core's generic error type, for scripts that catch it."""

    def __init__(self, exception_message: str, *args: object, **kwargs: object) -> None:
        super().__init__(exception_message)
        self.message = exception_message


class ModelNotFoundException(Exception):
    """No model folder matched (same name as azureml-core's exception)."""

    def __init__(self, exception_message: str, *args: object, **kwargs: object) -> None:
        super().__init__(exception_message)
        self.message = exception_message


def _models_dir() -> str:
    return os.path.join(os.environ.get("AML_APP_ROOT", os.getcwd()), "azureml-models")


def _from_root(model_name: str) -> str:
    local = os.path.join(os.getcwd(), model_name)
    if os.path.exists(local):
        return local
    raise ModelNotFoundException(
        f"Model {model_name} not found in cache at {_models_dir()} or in current working directory "
        f"{os.getcwd()}. For more info, set logging level to DEBUG."
    )


def _local(model_name: str, version: int | None) -> str:
    root = os.path.join(_models_dir(), model_name)
    if not os.path.exists(root):
        return _from_root(model_name)
    if version is None:
        versions = [int(v) for v in os.listdir(root) if v.isdigit()]
        if not versions:
            raise WebserviceException("versions is empty")
        version = max(versions)
    vdir = os.path.join(root, str(version))
    if not os.path.exists(vdir):
        return _from_root(model_name)
    entries = os.listdir(vdir)
    if len(entries) != 1:
        raise WebserviceException(f"Dir {vdir} can contain only 1 file or folder. Found {entries}")
    return os.path.join(vdir, entries[0])


class Model:
    """The one ``Model`` member scoring scripts call inside a container."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: object = None) -> str:
        """Path of the registered file or folder of ``model_name`` (at ``version``, else the latest)."""
        if version is not None and not isinstance(version, int):
            raise WebserviceException("version should be an int")
        if model_name is None:
            raise WebserviceException("model_name is None")
        if version is None:
            return _local(model_name, None)
        try:
            return _local(model_name, version)
        except ModelNotFoundException as exc:  # azureml-core re-raises it so when a version was asked for
            raise WebserviceException(exc.message) from None
