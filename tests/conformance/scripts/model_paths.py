"""Model.get_model_path: the path it resolves (relative to AML_APP_ROOT), or the class of what it raised."""
import os

from azureml.core.model import Model


def init():
    pass


def run(raw):
    name, _, version = raw.partition(":")
    try:
        path = Model.get_model_path(name, version=int(version) if version else None)
    except Exception as exc:  # noqa: BLE001 - the answer names what was raised
        return {"error": type(exc).__name__, "names_the_model": name in str(exc)}
    return {"path": os.path.relpath(path, os.environ["AML_APP_ROOT"])}
