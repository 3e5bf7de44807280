"""Static checks of an entry script before anything is started: it parses, and defines ``init`` and ``run``."""

from __future__ import annotations

import ast
from pathlib import Path

from nbdeploy.errors import InvalidInput


def check_entry_script(source: str, filename: str = "score.py") -> None:
    """Raise :class:`InvalidInput` when ``source`` cannot serve: a syntax error, or no ``init``/``run``.

    Names bound by ``def``, assignment or import at module level count, so ``from model import run`` passes.
    A ``run`` defined with ``def`` must take an input parameter and no ``*args``/``**kwargs``/positional-only
    parameters, as the scoring server requires.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        raise InvalidInput(
            f"{filename} line {exc.lineno}: syntax error: {exc.msg}" + (f"\n    {line}" if line else "")
        ) from exc
    bound: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound[(alias.asname or alias.name).partition(".")[0]] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = node
    if any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in tree.body):
        return  # a star import may bring init/run: let the server decide
    missing = [name for name in ("init", "run") if name not in bound]
    if missing:
        raise InvalidInput(
            f"{filename} defines no {' and no '.join(missing)}(): an entry script needs `def init():` and `def run(raw_data):`"
        )
    run = bound["run"]
    if isinstance(run, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = run.args
        if args.vararg or args.kwarg or args.posonlyargs:
            raise InvalidInput(f"{filename}: run() may not use *args, **kwargs or positional-only parameters")
        params = [a.arg for a in args.args + args.kwonlyargs if a.arg != "request_headers"]
        if not params:
            raise InvalidInput(f"{filename}: run() needs a parameter for the request data, e.g. `def run(raw_data):`")


def check_entry_script_file(path: str | Path) -> None:
    """:func:`check_entry_script` on a file."""
    file = Path(path)
    check_entry_script(file.read_text(encoding="utf-8", errors="replace"), filename=file.name)
