"""The model registry: versions, tags, properties and content-addressed files in a workspace.

The deploy layer lays a version's files into a bundle with ``model.download(dir, exist_ok=True, link=True)``
and records which service uses which version with :func:`record_usage` / :func:`release_usage`
(rows of ``model_usage``; :meth:`Model.delete` refuses while any exist).
"""

from __future__ import annotations

from nbdeploy.registry.gc import GcReport, gc
from nbdeploy.registry.model import Model
from nbdeploy.registry.store import FileEntry
from nbdeploy.registry.usage import record_usage, release_usage, usage

__all__ = ["FileEntry", "GcReport", "Model", "gc", "record_usage", "release_usage", "usage"]
