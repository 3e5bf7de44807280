"""The nbdeploy scoring server: runs an Azure ML entry script (``init()`` / ``run()``) over HTTP.

This package is self-contained: it imports nothing from the rest of nbdeploy, so images copy it alone
as a top-level package and start it with ``python -m <package>``. Runtime dependencies: uvicorn,
httptools, uvloop and the standard library (``orjson`` and ``inference-schema`` are used when present).
"""

__version__ = "0.1.0"
SERVER_VERSION = f"nbdeploy/{__version__}"
REQUIREMENTS = ("uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0")
"""What an environment that runs this server alone (an image, an isolated venv) installs, pinned."""
