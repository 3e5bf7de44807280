"""Registries of plugins found by name: built-ins, ``register`` calls and an entry-point group.

Entries are ``"module:attr"`` strings imported on first use, so listing names costs no import. Targets
(``nbdeploy.targets``) and builders (``nbdeploy.builders``) are the two registries.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PluginRegistry(Generic[T]):
    """Name -> plugin (a class, or ``"module:attr"`` loaded on first use), extended by an entry-point group."""

    def __init__(self, group: str, builtins: Mapping[str, str | T]) -> None:
        self.group = group
        self.entries: dict[str, str | T] = dict(builtins)
        self._entry_points_loaded = False

    def register(self, name: str, plugin: str | T) -> None:
        """Register ``plugin`` (or ``"module:attr"``) under ``name``, replacing an earlier one."""
        self.entries[name] = plugin

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self.entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self.entries

    def load(self, name: str) -> T:
        """The plugin registered as ``name``, imported now if needed (ModuleNotFoundError propagates)."""
        self._load_entry_points()
        entry = self.entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            loaded: Any = getattr(importlib.import_module(module_name), attr)
            self.entries[name] = loaded
            return loaded
        return entry

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            self.entries.setdefault(ep.name, ep.value)
