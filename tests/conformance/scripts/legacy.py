"""A v1 script: Model.get_model_path with the azureml-models/<name>/<version>/ layout."""
import os

from azureml.core.model import Model


def init():
    global path
    path = Model.get_model_path("my_model")


def run(data):
    return {"path": os.path.relpath(path, os.environ["AML_APP_ROOT"]), "content": open(path).read()}
