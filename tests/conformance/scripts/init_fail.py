"""init() raises: the server must log the traceback and the model folder listing, exit 3, never listen."""


def init():
    raise RuntimeError("model file is corrupt")


def run(data):
    return data
