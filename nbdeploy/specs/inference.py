"""``InferenceConfig``: the entry script, its source folder and its environment (v1 signature)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import yaml

from nbdeploy.errors import InvalidInput, InvalidSpec
from nbdeploy.specs.conda import CondaDependencies
from nbdeploy.specs.environment import Environment

_LEGACY_PARAMS = ("runtime", "conda_file", "extra_docker_file_steps", "enable_gpu", "cuda_version", "base_image")
CURRENT_KEYS = {"entryScript", "sourceDirectory", "environment", "description"}
LEGACY_KEYS = {
    "entryScript",
    "runtime",
    "condaFile",
    "extraDockerfileSteps",
    "sourceDirectory",
    "enableGpu",
    "baseImage",
    "baseImageRegistry",
    "cudaVersion",
    "description",
}


class InferenceConfig:
    """Which script answers requests, from which folder, in which environment."""

    def __init__(
        self,
        entry_script: str | os.PathLike[str],
        runtime: str | None = None,
        conda_file: str | None = None,
        extra_docker_file_steps: str | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        enable_gpu: bool | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
        environment: Environment | None = None,
    ) -> None:
        if not entry_script:
            raise InvalidSpec("entry_script", "is required: the path of the score.py that defines init() and run()")
        legacy = {
            k: v
            for k, v in zip(
                _LEGACY_PARAMS,
                (runtime, conda_file, extra_docker_file_steps, enable_gpu, cuda_version, base_image),
                strict=True,
            )
            if v is not None
        }
        if environment is not None and legacy:
            raise InvalidSpec(
                sorted(legacy)[0], "cannot be combined with environment; set it on the Environment instead"
            )
        if runtime is not None and runtime.lower() not in ("python", "spark-py"):
            raise InvalidSpec("runtime", f"{runtime!r} is not supported", allowed=["python", "spark-py"])
        if legacy:
            warnings.warn(
                f"InferenceConfig({', '.join(sorted(legacy))}=...) is the legacy form; "
                "use environment=Environment(...)",
                DeprecationWarning,
                stacklevel=2,
            )
            environment = _environment_from_legacy(conda_file, base_image, enable_gpu, extra_docker_file_steps)
        if source_directory is not None:
            source = Path(source_directory)
            if not source.is_dir():
                raise InvalidInput(f"source_directory {source} does not exist or is not a folder.")
            self.source_directory: str | None = os.path.realpath(source)
            script_path = Path(self.source_directory) / entry_script
        else:
            self.source_directory = None
            script_path = Path(entry_script)
        if not script_path.is_file():
            where = f" (relative to source_directory {self.source_directory})" if self.source_directory else ""
            raise InvalidInput(
                f"Entry script {entry_script}{where} does not exist; write it with %%score_script or pass its path."
            )
        self.entry_script = str(entry_script)
        self._entry_script_path = script_path.resolve()
        self.environment = environment
        self.description = description
        self.extra_docker_file_steps = extra_docker_file_steps
        self.base_image_registry = base_image_registry

    @property
    def entry_script_path(self) -> Path:
        """Absolute path of the entry script."""
        return self._entry_script_path

    # -- files -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base_dir: str | os.PathLike[str] = ".", source: str | None = None
    ) -> InferenceConfig:
        """Read the current or the legacy form of v1's inferenceconfig.json (already parsed)."""
        if not isinstance(data, dict):
            raise InvalidSpec("inference config", "must be a JSON/YAML object", source=source)
        legacy = any(k in data for k in LEGACY_KEYS - CURRENT_KEYS)
        allowed = LEGACY_KEYS if legacy else CURRENT_KEYS
        unknown = set(data) - (LEGACY_KEYS | CURRENT_KEYS)
        if unknown:
            raise InvalidSpec(sorted(unknown)[0], "unknown inference config key", allowed=allowed, source=source)
        if "entryScript" not in data:
            raise InvalidSpec("entryScript", "is required", source=source)
        base = Path(base_dir)
        source_dir = data.get("sourceDirectory")
        source_dir_path = str(base / source_dir) if source_dir else None
        entry = data["entryScript"] if source_dir else str(base / data["entryScript"])
        if legacy:
            conda_file = data.get("condaFile")
            if conda_file:
                conda_file = str((Path(source_dir_path) if source_dir_path else base) / conda_file)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return cls(
                    entry,
                    runtime=data.get("runtime"),
                    conda_file=conda_file,
                    extra_docker_file_steps=data.get("extraDockerfileSteps"),
                    source_directory=source_dir_path,
                    enable_gpu=data.get("enableGpu"),
                    description=data.get("description"),
                    base_image=data.get("baseImage"),
                    cuda_version=data.get("cudaVersion"),
                )
        env_doc = data.get("environment")
        environment = Environment.from_v1_document(env_doc, source=source) if env_doc else None
        return cls(
            entry, source_directory=source_dir_path, environment=environment, description=data.get("description")
        )

    def to_dict(self) -> dict[str, Any]:
        """The current form of inferenceconfig.json."""
        doc: dict[str, Any] = {"entryScript": self.entry_script, "sourceDirectory": self.source_directory}
        if self.environment is not None:
            doc["environment"] = self.environment.to_v1_document()
        if self.description:
            doc["description"] = self.description
        return doc

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def __repr__(self) -> str:
        return (
            f"InferenceConfig(entry_script={self.entry_script!r}, source_directory={self.source_directory!r}, "
            f"environment={self.environment!r})"
        )


def load_inference_config(path: str | os.PathLike[str]) -> InferenceConfig:
    """Read inferenceconfig.json (or .yml); relative paths in it are relative to the file's folder."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Inference config {file} does not exist.")
    try:
        data = yaml.safe_load(file.read_text())  # JSON is YAML
    except yaml.YAMLError as exc:
        raise InvalidSpec(str(file), f"not valid JSON or YAML: {exc}") from exc
    return InferenceConfig.from_dict(data, base_dir=file.parent, source=str(file))


def _environment_from_legacy(
    conda_file: str | None, base_image: str | None, enable_gpu: bool | None, steps: str | None
) -> Environment:
    env = Environment("legacy-inference-environment")
    if conda_file:
        env.python.conda_dependencies = CondaDependencies(conda_file)
    env.docker.base_image = base_image
    env.docker.gpu_support = bool(enable_gpu)
    return env
