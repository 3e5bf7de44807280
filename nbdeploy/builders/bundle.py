"""The deployment bundle: the app root a scoring server runs in, laid out as Azure ML v1 containers had it.

::

    <app root>/
      score.py                         entry script (no source directory), or
      <source dir name>/...            the source directory, entry script inside it
      azureml-models/<name>/<version>/<registered file or folder>

``AZUREML_MODEL_DIR`` is ``azureml-models/<name>/<version>`` for one model and ``azureml-models`` for several.
A bundle is identified by the sha256 of its content (code files and model digests), and is materialized
once per digest under the workspace cache, so deploying unchanged inputs copies nothing. Model files are
hard links to the workspace's deploy copies (:mod:`nbdeploy.registry.copies`), never to the registry's
blobs: a deployment that writes its model file cannot change the registry. The marker records each model
file's size, inode and mtime; a bundle whose model files were written since is not reused (a fresh one is
laid out beside it, on a fresh deploy copy).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbdeploy.builders.entry_script import check_entry_script_file
from nbdeploy.builders.ignore import walk_files
from nbdeploy.errors import InvalidInput

if TYPE_CHECKING:
    from nbdeploy.registry import Model
    from nbdeploy.specs import InferenceConfig
    from nbdeploy.workspace import Workspace

log = logging.getLogger(__name__)

MODELS_DIR = "azureml-models"
COMPLETE_MARKER = ".nbdeploy-bundle.json"


@dataclass(frozen=True)
class Bundle:
    """A materialized app root."""

    path: Path
    """The app root folder (read-only by convention: shared by every revision with the same digest)."""
    digest: str
    code_digest: str
    models_digest: str
    entry_script: str
    """Entry script, relative to the app root, forward slashes (AZUREML_ENTRY_SCRIPT)."""
    model_dir: str
    """Model folder relative to the app root (AZUREML_MODEL_DIR)."""
    source_dir: str | None
    """Source folder name relative to the app root (AZUREML_SOURCE_DIRECTORY), if any."""
    model_ids: tuple[str, ...]

    def server_env(self, app_root: str | None = None) -> dict[str, str]:
        """The environment variables the scoring server needs, with the app root at ``app_root``."""
        root = app_root or str(self.path)
        env = {
            "AML_APP_ROOT": root,
            "AZUREML_ENTRY_SCRIPT": self.entry_script,
            "AZUREML_MODEL_DIR": f"{root.rstrip('/')}/{self.model_dir}",
        }
        if self.source_dir:
            env["AZUREML_SOURCE_DIRECTORY"] = self.source_dir
        return env


def create_bundle(workspace: Workspace, models: Sequence[Model], inference_config: InferenceConfig) -> Bundle:
    """Lay out (or reuse) the app root for these models and this entry script."""
    code_files, entry_rel, source_name = _code_files(inference_config)
    check_entry_script_file(inference_config.entry_script_path)
    code_digest = _digest(f"{rel}\0{_file_sha256(src)}\0{_mode(src)}" for rel, src in code_files)
    ordered_models = sorted(models, key=lambda m: (m.name, m.version))
    _check_unique(ordered_models)
    models_digest = _digest(f"{m.name}\0{m.version}\0{m.digest}" for m in ordered_models)
    digest = _digest([code_digest, models_digest])
    model_dir = (
        MODELS_DIR if len(ordered_models) != 1 else f"{MODELS_DIR}/{ordered_models[0].name}/{ordered_models[0].version}"
    )
    path = _intact_or_free(workspace.cache_dir / "bundles", digest[:32])
    bundle = Bundle(
        path=path,
        digest=digest,
        code_digest=code_digest,
        models_digest=models_digest,
        entry_script=entry_rel,
        model_dir=model_dir,
        source_dir=source_name,
        model_ids=tuple(f"{m.name}:{m.version}" for m in ordered_models),
    )
    if (bundle.path / COMPLETE_MARKER).is_file():
        log.debug("bundle %s reused", digest[:12])
        return bundle
    bundle.path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=bundle.path.parent))
    try:
        for rel, src in code_files:
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        for model in ordered_models:  # links to the deploy copies, never to the blobs
            model.download(str(staging / MODELS_DIR / model.name / str(model.version)), exist_ok=True, link=True)
        (staging / MODELS_DIR).mkdir(exist_ok=True)  # AZUREML_MODEL_DIR exists (empty) for scripts that load no model
        (staging / COMPLETE_MARKER).write_text(
            json.dumps(
                {
                    "digest": digest,
                    "models": list(bundle.model_ids),
                    "entry_script": entry_rel,
                    "model_files": _fingerprints(staging / MODELS_DIR),
                }
            )
        )
        try:
            os.rename(staging, bundle.path)
        except OSError:
            if not (bundle.path / COMPLETE_MARKER).is_file():  # not a concurrent twin: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("bundle %s laid out at %s", digest[:12], bundle.path)
    return bundle


MAX_TWINS = 64


def _intact_or_free(folder: Path, name: str) -> Path:
    """``folder/name`` unless a bundle there had its model files written since it was laid out; then the
    first ``name-N`` that is intact or free (the written one may still serve its revision: it stays)."""
    for i in range(MAX_TWINS):
        candidate = folder / (name if i == 0 else f"{name}-{i}")
        marker = candidate / COMPLETE_MARKER
        if not marker.is_file() or _models_intact(candidate):
            return candidate
        log.warning("bundle %s: model files were changed by a deployment; laying out a fresh bundle", candidate)
    raise InvalidInput(f"{MAX_TWINS} bundles for {name} in {folder} had their model files changed; remove them.")


def _fingerprints(models_root: Path) -> dict[str, list[int]]:
    """``{relative path: [size, inode, mtime_ns]}`` of every model file (a write changes mtime; a link does not)."""
    out: dict[str, list[int]] = {}
    for dirpath, _, filenames in os.walk(models_root):
        for fname in filenames:
            p = Path(dirpath) / fname
            st = p.lstat()
            out[str(p.relative_to(models_root))] = [st.st_size, st.st_ino, st.st_mtime_ns]
    return out


def _models_intact(bundle_path: Path) -> bool:
    try:
        recorded = json.loads((bundle_path / COMPLETE_MARKER).read_text()).get("model_files")
    except (OSError, ValueError):
        return False
    if recorded is None:  # laid out before fingerprints were recorded: model files may be links to blobs
        return False
    try:
        return (
            _fingerprints(bundle_path / MODELS_DIR) == recorded if (bundle_path / MODELS_DIR).is_dir() else not recorded
        )
    except OSError:
        return False


def _code_files(config: InferenceConfig) -> tuple[list[tuple[str, Path]], str, str | None]:
    """(relative path in app root, source file) pairs, the entry script's relative path, the source folder name."""
    if config.source_directory is None:
        script = config.entry_script_path
        if not script.is_file():
            raise InvalidInput(f"Entry script {config.entry_script} does not exist.")
        return [(script.name, script)], script.name, None
    source = Path(config.source_directory)
    name = source.name
    files = [(f"{name}/{rel}", path) for rel, path in walk_files(source)]  # .amlignore, .dockerignore, .gitignore
    entry_rel = f"{name}/{Path(config.entry_script).as_posix()}"
    if not any(rel == entry_rel for rel, _ in files):
        script = source / config.entry_script
        if not script.is_file():
            raise InvalidInput(f"Entry script {config.entry_script} not found in source_directory {source}.")
        files.append((entry_rel, script))  # ignored by a pattern, but the entry script always goes in
    return sorted(files), entry_rel, name


def _check_unique(models: Sequence[Model]) -> None:
    seen: set[tuple[str, int]] = set()
    for model in models:
        key = (model.name, model.version)
        if key in seen:
            raise InvalidInput(f"Model {model.name}:{model.version} is listed twice.")
        seen.add(key)


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def _digest(parts: Iterator[str] | Sequence[str]) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode())
        sha.update(b"\n")
    return sha.hexdigest()
