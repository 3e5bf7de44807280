"""Load the entry script, inspect ``run()`` once, call ``init()``; report failures like azmlinfsrv."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import batching, shims

log = logging.getLogger("nbdeploy.server.user_script")

PLAIN, SCHEMA, RAWHTTP = "plain", "schema", "rawhttp"


class ScriptError(Exception):
    """The entry script cannot be served (import error, missing init/run, bad run signature, init raised)."""


@dataclass
class Script:
    """What the app needs to know about the loaded entry script."""

    module: types.ModuleType
    run: Callable[..., Any]
    style: str
    params: list[inspect.Parameter] = field(default_factory=list)
    wants_headers: bool = False
    batch: dict[str, float] | None = None


def _import(path: str | None) -> types.ModuleType:
    if path is None:
        try:
            return importlib.import_module("main")
        except ModuleNotFoundError as exc:
            if exc.name == "main":
                raise ScriptError("No score script found. Expected score script main.py.") from exc
            raise
    if not os.path.isfile(path):
        raise ScriptError(f"Entry script not found: {path}")
    spec = importlib.util.spec_from_file_location("entry_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["entry_module"] = module
    spec.loader.exec_module(module)
    log.info("Found user script at %s", path)
    return module


def _inspect_run(run: Callable[..., Any]) -> tuple[list[inspect.Parameter], bool]:
    params = list(inspect.signature(run).parameters.values())
    bad = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY)]
    if bad:
        raise ScriptError(f"run() may not use positional-only, *args or **kwargs parameters: {bad}")
    wants_headers = any(p.name == "request_headers" for p in params)
    params = [p for p in params if p.name != "request_headers"]
    if not params:
        raise ScriptError("run() must take at least one parameter besides request_headers")
    return params, wants_headers


def _schema_decorated(run: Callable[..., Any]) -> bool:
    if "inference_schema" not in sys.modules:
        return False
    try:
        from inference_schema.schema_util import is_schema_decorated
    except ImportError:
        return False
    return bool(is_schema_decorated(run))


def load(
    entry_path: str | None, app_root: str, source_dir: str | None, batch_env: tuple[int, float] = (0, 0.0)
) -> Script:
    """Import the script and classify its ``run`` (does not call ``init``)."""
    for folder in (app_root, os.path.join(app_root, source_dir) if source_dir else None):
        if folder and folder not in sys.path:
            sys.path.append(folder)
    if entry_path:
        entry_dir = os.path.dirname(entry_path)
        if entry_dir not in sys.path:
            sys.path.append(entry_dir)
    shims.register()
    module = _import(entry_path)
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise ScriptError(f"The entry script has no {name}() function")
    run = module.run
    driver = getattr(module, "driver_module", None)
    if isinstance(driver, types.ModuleType) and callable(getattr(driver, "run", None)):
        run = driver.run
    params, wants_headers = _inspect_run(run)
    rawhttp, schema = shims.rawhttp_requested(run), _schema_decorated(run)
    if rawhttp and schema:
        raise ScriptError("@rawhttp and @input_schema cannot be used together on run()")
    style = RAWHTTP if rawhttp else SCHEMA if schema else PLAIN
    batch = getattr(run, batching.ATTR, None)
    if batch is None and batch_env[0] > 0 and style == PLAIN:
        batch = {"max_batch_size": batch_env[0], "max_latency_ms": batch_env[1]}
    if batch is not None and style != PLAIN:
        raise ScriptError("Adaptive batching needs an undecorated run(inputs: list)")
    log.info("run() style: %s%s", style, " (batched)" if batch else "")
    return Script(module=module, run=run, style=style, params=params, wants_headers=wants_headers, batch=batch)


def call_init(script: Script) -> None:
    log.info("Invoking user's init function")
    script.module.init()
    log.info("Users's init has completed successfully")


def model_dir_listing(model_dir: str, limit: int = 200) -> list[str]:
    """Up to ``limit`` lines of the model folder tree, for the init-failure log."""
    lines: list[str] = []
    if not model_dir or not os.path.isdir(model_dir):
        return [f"Model directory {model_dir!r} does not exist"]
    for root, dirs, files in os.walk(model_dir):
        dirs.sort()
        depth = os.path.relpath(root, model_dir).count(os.sep) + (root != model_dir)
        lines.append("  " * depth + (os.path.basename(root) or root) + "/")
        for name in sorted(files):
            lines.append("  " * (depth + 1) + name)
            if len(lines) >= limit:
                return lines + ["..."]
    return lines
