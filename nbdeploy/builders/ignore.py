"""Which files of a source folder go into bundles and build contexts: one ignore-file engine for both.

A folder's rules are nbdeploy's defaults (caches, VCS and virtual-environment folders, the ignore files
themselves) followed by the patterns of the first ignore file found in it, in this order of precedence:

1. ``.amlignore`` (Azure ML v1's own file: when present, it alone decides),
2. ``.dockerignore``,
3. ``.gitignore``.

Every file is read with gitignore rules (``pathspec``'s ``GitIgnoreSpec``): the last matching pattern
decides, ``!pattern`` re-includes, ``dir/`` matches folders only, a pattern with a leading or inner ``/`` is
anchored to the folder, ``**`` spans folders, and nothing under an ignored folder can be re-included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

IGNORE_FILES = (".amlignore", ".dockerignore", ".gitignore")
"""Looked for in this order; the first one found is used (see the module docstring)."""
ALWAYS_IGNORED = (
    "__pycache__/",
    "*.pyc",
    ".ipynb_checkpoints/",
    ".git/",
    ".nbdeploy/",
    ".venv/",
    *IGNORE_FILES,
)


@dataclass(frozen=True)
class IgnoreRules:
    """A folder's ignore patterns; :meth:`ignored` answers for one path relative to that folder."""

    spec: pathspec.PathSpec
    source: str | None = None
    """The ignore file the user patterns came from (``None``: defaults only)."""

    @classmethod
    def parse(cls, text: str, source: str | None = None, defaults: Iterable[str] = ()) -> IgnoreRules:
        """Rules from gitignore-style ``text`` (after ``defaults``, so ``!`` lines can override those)."""
        lines = [*defaults, *text.splitlines()]
        return cls(pathspec.GitIgnoreSpec.from_lines(lines), source)

    @classmethod
    def for_folder(cls, folder: Path) -> IgnoreRules:
        """The defaults plus the folder's first ignore file found (``.amlignore``, ``.dockerignore``, ``.gitignore``)."""
        for name in IGNORE_FILES:
            file = folder / name
            if file.is_file():
                return cls.parse(file.read_text(errors="replace"), name, ALWAYS_IGNORED)
        return cls.parse("", None, ALWAYS_IGNORED)

    def ignored(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether ``relpath`` itself ('/'-separated, relative to the folder) matches the rules."""
        return self.spec.match_file(relpath.rstrip("/") + "/" if is_dir else relpath)

    def excludes(self, relpath: str) -> bool:
        """Whether the file ``relpath`` is left out, itself or through an ignored parent folder."""
        parts = relpath.split("/")
        return any(self.ignored("/".join(parts[:i]), is_dir=True) for i in range(1, len(parts))) or self.ignored(
            relpath
        )


def walk_files(folder: Path, rules: IgnoreRules | None = None) -> list[tuple[str, Path]]:
    """(relative path, absolute path) of every file under ``folder`` that ``rules`` keep, sorted.

    Ignored folders are not entered. ``rules`` default to :meth:`IgnoreRules.for_folder`.
    """
    rules = rules if rules is not None else IgnoreRules.for_folder(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules.ignored(rel_dir + d, is_dir=True))
        for name in filenames:
            if not rules.ignored(rel_dir + name):
                found.append((rel_dir + name, Path(dirpath) / name))
    return sorted(found)
