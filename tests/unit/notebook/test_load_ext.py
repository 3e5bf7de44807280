"""``%load_ext nbdeploy`` only registers: no heavy imports (checked in a fresh interpreter), no network."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["sklearn", "numpy", "httpx", "ipywidgets", "yaml", "sqlite3", "nbdeploy.service", "nbdeploy.registry",
         "nbdeploy.workspace", "nbdeploy.targets.base", "nbdeploy.notebook.widgets"]

PROBE = """
import json, sys
from IPython.testing.globalipapp import get_ipython
ip = get_ipython()
before = set(sys.modules)
ip.run_line_magic("load_ext", "nbdeploy")
new = sorted(set(sys.modules) - before)
magics = sorted(ip.magics_manager.magics["line"]) + sorted(ip.magics_manager.magics["cell"])
import nbdeploy.progress as p
print(json.dumps({"new": new, "magics": magics, "factory": p._factory.__module__}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_load_ext_imports_nothing_heavy():
    result = _probe()
    loaded_heavy = [m for m in result["new"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded_heavy == [], f"%load_ext nbdeploy imported {loaded_heavy}"
    nbdeploy_modules = [m for m in result["new"] if m.startswith("nbdeploy")]
    assert len(nbdeploy_modules) <= 10, nbdeploy_modules


def test_load_ext_registers_every_magic_and_the_sink_factory():
    result = _probe()
    for name in ("score_script", "environment", "inference_config", "register_model", "deploy", "services", "models",
                 "score", "logs", "undeploy", "nbdeploy_workspace"):
        assert name in result["magics"], name
    assert result["factory"] == "nbdeploy.notebook._frontend"


def test_importtime_of_load_ext_is_small():
    """``python -X importtime``: the modules %load_ext pulls in, with their cumulative cost, stay few."""
    code = "import nbdeploy.notebook.magics"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    rows = [line.split("|") for line in out.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    names = [r[2].strip() for r in rows[1:]]
    assert not [n for n in names if n.split(".")[0] in ("sklearn", "numpy", "httpx", "ipywidgets", "yaml")]
