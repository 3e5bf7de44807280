"""v1's ``Model.package`` and the pre-1.0 image API (``ContainerImage``, ``Image``) on nbdeploy's image builds.

An image is built exactly as the ``local`` and ``aks`` targets build a revision (same Dockerfile, same content
digest tag), so deploying the same models and script later reuses it. Building needs a Docker engine:
``Model.package`` says so clearly when none answers. ``Image.create`` keeps the image's definition (models,
script, environment) in the workspace and builds it when an engine answers; without one the image stays a
definition that ``Webservice.deploy_from_image`` deploys as is (on the process target, for a LocalWebservice).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbdeploy.compat.azureml.exceptions import WebserviceException, as_v1, raises_v1
from nbdeploy.errors import EngineUnavailable, InvalidInput, InvalidName, NotFound, TargetNotAvailable
from nbdeploy.progress import make_sink
from nbdeploy.registry import Model as _Model
from nbdeploy.specs import Environment, InferenceConfig, deployment_config_class
from nbdeploy.workspace import Workspace, as_workspace

log = logging.getLogger(__name__)
_said_no_docker = False


class ImageNotFound(NotFound):
    kind = "image"


def _request(workspace: Workspace, name: str, models: Sequence[_Model], inference_config: InferenceConfig) -> Any:
    """The build request of the ``local`` target for these models and this inference config."""
    from nbdeploy.builders.base import BuildRequest
    from nbdeploy.builders.bundle import create_bundle

    bundle = create_bundle(workspace, list(models), inference_config)
    return BuildRequest(name, 1, bundle, deployment_config_class("local")(), inference_config.environment)


def _build(
    workspace: Workspace,
    name: str,
    models: Sequence[_Model],
    inference_config: InferenceConfig,
    label: str | None,
    lines: list[str],
) -> str:
    """Build the image with the container targets' image builder; returns its tag (``nbdeploy/<name>:<label>``)."""
    from nbdeploy.builders.base import get_builder
    from nbdeploy.builders.image import repository

    client = _docker()
    artifact = get_builder("docker-image", workspace, progress=lines.append).build(
        _request(workspace, name, models, inference_config)
    )
    if label:
        client.images.get(artifact.reference).tag(repository(name), label)
        return f"{repository(name)}:{label}"
    return artifact.reference


def _docker() -> Any:
    """A connected Docker client, or EngineUnavailable saying that building an image needs one."""
    from nbdeploy.builders.docker_builder import docker_client

    try:
        return docker_client(timeout=30)
    except (EngineUnavailable, TargetNotAvailable) as exc:
        raise EngineUnavailable(
            "Docker",
            str(getattr(exc, "reason", exc)).rstrip("."),
            "Building an image needs a Docker engine: start one (bash tests/engines/docker.sh up in a clone of "
            "nbdeploy), or deploy without an image: Model.deploy(...) with LocalWebservice runs on the process target.",
        ) from exc


def _context_to_folder(
    workspace: Workspace,
    models: Sequence[_Model],
    inference_config: InferenceConfig,
    name: str,
    output_directory: str | Path,
) -> Path:
    """Write the Docker build context (Dockerfile and files) into ``output_directory``."""
    from nbdeploy.builders.docker_builder import context_files
    from nbdeploy.builders.image import image_spec_for

    request = _request(workspace, name, models, inference_config)
    files = context_files(image_spec_for(request), request.bundle.path, request.bundle.source_dir)
    out = Path(output_directory)
    out.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, dest)
        elif isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            dest.write_text(content)
    return out


class ModelPackage:
    """v1's ``ModelPackage``: a built image (``location`` is its tag), or a build context (``generate_dockerfile``)."""

    def __init__(
        self,
        workspace: Workspace,
        models: Sequence[_Model],
        inference_config: InferenceConfig,
        image_name: str | None,
        image_label: str | None,
        generate_dockerfile: bool,
    ) -> None:
        self.workspace = workspace
        self.models = list(models)
        self.inference_config = inference_config
        self.image_name = image_name or "package"
        _check_image_name(self.image_name)
        self.image_label = image_label
        self.generate_dockerfile = generate_dockerfile
        self._lines: list[str] = []
        self.location: str | None = None
        self.state = "NotStarted"
        if not generate_dockerfile:
            self.location = _build(workspace, self.image_name, self.models, inference_config, image_label, self._lines)
        self.state = "Succeeded"

    def wait_for_creation(self, show_output: bool = False) -> None:
        """The build ran in ``Model.package``; with ``show_output`` its log lines are shown."""
        sink = make_sink(show_output, workspace=self.workspace)
        for line in self._lines:
            sink.line(self.image_name, line)
        sink.finish(self.image_name, self.state, "" if self.location is None else f"image {self.location}")

    def get_logs(self, decode: bool = True, offset: int = 0) -> str:
        text = "\n".join(self._lines)[offset:]
        return text if decode else text.encode()  # type: ignore[return-value]

    def save(self, output_directory: str | Path) -> None:
        """Write the Docker build context (Dockerfile, app, models, server) into ``output_directory``."""
        _context_to_folder(self.workspace, self.models, self.inference_config, self.image_name, output_directory)

    def pull(self) -> None:
        """The image is in the local engine already (nothing to pull)."""
        if self.location is None:
            raise InvalidInput(
                "This package was created with generate_dockerfile=True: there is no image; use save(folder)."
            )
        log.info("image %s is in the local Docker engine", self.location)

    def get_container_registry(self) -> None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "state": self.state,
            "imageName": self.image_name,
            "imageLabel": self.image_label,
            "models": [m.id for m in self.models],
            "generateDockerfile": self.generate_dockerfile,
        }

    def __repr__(self) -> str:
        return f"ModelPackage(location={self.location!r}, state={self.state!r})"


@raises_v1(WebserviceException)
def package(
    workspace: Workspace | None,
    models: Sequence[_Model],
    inference_config: InferenceConfig | None = None,
    generate_dockerfile: bool = False,
    image_name: str | None = None,
    image_label: str | None = None,
) -> ModelPackage:
    """v1's ``Model.package``: build the scoring image now and return it (``.location`` is its tag)."""
    if inference_config is None:
        raise InvalidInput("Model.package needs an inference_config (no-code packaging is not supported).")
    from nbdeploy.compat.azureml._v1 import deployable_inference_config

    ws = as_workspace(workspace)
    return ModelPackage(
        ws, models, deployable_inference_config(inference_config), image_name, image_label, generate_dockerfile
    )


# -- the pre-1.0 image API ---------------------------------------------------------------------------------


class ContainerImageConfig:
    """What ``ContainerImage.image_configuration`` returns: a script, a runtime and a conda file."""

    def __init__(
        self,
        execution_script: str,
        runtime: str,
        conda_file: str | None = None,
        docker_file: str | None = None,
        schema_file: str | None = None,
        dependencies: Sequence[str] | None = None,
        enable_gpu: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
    ) -> None:
        if runtime is None or str(runtime).lower() not in ("python", "spark-py"):
            raise InvalidInput(f"image_configuration: runtime {runtime!r} is not supported (use 'python').")
        if docker_file:
            warnings.warn(
                "ContainerImage.image_configuration(docker_file=...) steps are not applied by nbdeploy; "
                "put system packages on the Environment (env.docker.system_packages)",
                stacklevel=3,
            )
        self.execution_script = execution_script
        self.runtime = runtime
        self.conda_file = conda_file
        self.dependencies = list(dependencies or [])
        self.enable_gpu = enable_gpu
        self.tags = dict(tags or {})
        self.properties = dict(properties or {})
        self.description = description
        self.base_image = base_image
        self.schema_file = schema_file

    def inference_config(self, workspace: Workspace | None = None) -> InferenceConfig:
        """The equivalent InferenceConfig.

        The script (with its dependencies, copied into a folder of their own) and an Environment.
        """
        env = (
            Environment.from_conda_specification("image-environment", self.conda_file)
            if self.conda_file
            else Environment("image-environment")
        )
        env.docker.base_image = self.base_image
        env.docker.gpu_support = bool(self.enable_gpu)
        script = Path(self.execution_script)
        extra = [*self.dependencies, *([self.schema_file] if self.schema_file else [])]
        if not extra:
            return InferenceConfig(str(script), environment=env, description=self.description)
        return InferenceConfig(
            script.name if script.parent == Path(".") else str(script),
            source_directory=str(_stage_sources(as_workspace(workspace), [str(script), *extra])),
            environment=env,
            description=self.description,
        )


def _stage_sources(workspace: Workspace, files: Sequence[str]) -> Path:
    """Copy the script and its dependencies (relative paths kept) into a folder named by their content digest."""
    import hashlib

    sha = hashlib.sha256()
    for rel in files:
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts:
            raise InvalidInput(
                f"image_configuration: {rel} must be a relative path below the current folder (v1's rule)."
            )
        if not path.is_file():
            raise InvalidInput(f"image_configuration: {rel} does not exist.")
        sha.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = workspace.cache_dir / "compat-sources" / sha.hexdigest()[:24] / "app"
    if not folder.is_dir():
        staging = folder.parent / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rel, staging / rel)
        staging.rename(folder)
    return folder


def _images_folder(workspace: Workspace) -> Path:
    return workspace.path / "compat" / "images"


class Image:
    """v1's ``Image(workspace, name=..., version=...)``: a recorded image definition, built when Docker answers."""

    @raises_v1(WebserviceException)
    def __init__(
        self,
        workspace: Workspace | None,
        name: str | None = None,
        id: str | None = None,  # noqa: A002
        tags: Any = None,
        properties: Any = None,
        version: int | None = None,
    ) -> None:
        self.workspace = as_workspace(workspace)
        if id:
            name, _, v = id.partition(":")
            version = int(v) if v else version
        if not name:
            raise InvalidInput("Image(workspace, name=...) needs a name or an id 'name:version'")
        self._doc = _load_image(self.workspace, name, version)

    # attributes ------------------------------------------------------------------------------------
    name = property(lambda self: self._doc["name"])
    version = property(lambda self: self._doc["version"])
    id = property(lambda self: f"{self._doc['name']}:{self._doc['version']}")
    tags = property(lambda self: dict(self._doc.get("tags") or {}))
    description = property(lambda self: self._doc.get("description"))
    created_time = property(lambda self: self._doc["created_time"])
    creation_state = property(lambda self: self._doc["creation_state"])
    image_location = property(lambda self: self._doc.get("image_location"))
    image_build_log_uri = property(lambda self: self._doc.get("build_log"))
    models = property(lambda self: [_Model.get(m, workspace=self.workspace) for m in self._doc["models"]])

    def inference_config(self) -> InferenceConfig:
        doc = self._doc["inference_config"]
        env = Environment.from_stored_dict(doc["environment"]) if doc.get("environment") else None
        return InferenceConfig(
            doc["entry_script"],
            source_directory=doc.get("source_directory"),
            environment=env,
            description=doc.get("description"),
        )

    @staticmethod
    @raises_v1(WebserviceException)
    def create(
        workspace: Workspace | None, name: str, models: Sequence[_Model], image_config: ContainerImageConfig
    ) -> Image:
        """Record the image definition; ``wait_for_creation`` builds it when a Docker engine answers."""
        if not isinstance(image_config, ContainerImageConfig):
            raise InvalidInput("Image.create: image_config must come from ContainerImage.image_configuration(...)")
        ws = as_workspace(workspace)
        ws.ensure()
        _check_image_name(name)
        ic = image_config.inference_config(ws)
        folder = _images_folder(ws) / name
        folder.mkdir(parents=True, exist_ok=True)
        version = 1 + max((int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()), default=0)
        doc = {
            "name": name,
            "version": version,
            "models": [m.id for m in models],
            "tags": image_config.tags,
            "description": image_config.description,
            "created_time": datetime.now(timezone.utc).isoformat(),
            "creation_state": "NotStarted",
            "image_location": None,
            "build_log": None,
            "inference_config": {
                "entry_script": str(ic.entry_script_path) if ic.source_directory is None else ic.entry_script,
                "source_directory": ic.source_directory,
                "description": ic.description,
                "environment": ic.environment.to_dict() if ic.environment is not None else None,
            },
        }
        (folder / f"{version}.json").write_text(json.dumps(doc, indent=2))
        return Image(ws, name, version=version)

    @staticmethod
    def list(
        workspace: Workspace | None,
        image_name: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: Any = None,
        properties: Any = None,
    ) -> list[Image]:
        ws = as_workspace(workspace)
        root = _images_folder(ws)
        found = []
        for path in sorted(root.glob("*/*.json")) if root.is_dir() else []:
            image = Image(ws, path.parent.name, version=int(path.stem))
            if image_name and image.name != image_name:
                continue
            if model_id and model_id not in image._doc["models"]:
                continue
            if model_name and not any(m.split(":")[0] == model_name for m in image._doc["models"]):
                continue
            found.append(image)
        return found

    def wait_for_creation(self, show_output: bool = False) -> None:
        """Build the image when a Docker engine answers; without one it stays a definition (said once)."""
        global _said_no_docker
        if self.creation_state == "Succeeded":
            return
        sink = make_sink(show_output, workspace=self.workspace)
        lines: list[str] = []
        try:
            _docker()
        except EngineUnavailable as exc:
            if not _said_no_docker:
                log.warning(
                    "No Docker engine answers (%s), so images are not built; Webservice.deploy_from_image deploys "
                    "the image's models and script as they are (a LocalWebservice on the process target).",
                    exc.reason,
                )
                _said_no_docker = True
            self._update(creation_state="NotBuilt")
            sink.finish(
                self.name, "NotBuilt", "no Docker engine answers; deploy_from_image runs it on the process target"
            )
            return
        try:
            tag = _build(self.workspace, self.name, self.models, self.inference_config(), str(self.version), lines)
        except Exception:
            self._update(creation_state="Failed", build_log="\n".join(lines))
            raise
        for line in lines:
            sink.line(self.name, line)
        self._update(creation_state="Succeeded", image_location=tag, build_log="\n".join(lines))
        sink.finish(self.name, "Succeeded", f"image {tag}")

    def update_creation_state(self) -> None:
        self._doc = _load_image(self.workspace, self.name, self.version)

    def get_logs(self) -> str:
        return self._doc.get("build_log") or ""

    def delete(self) -> None:
        (_images_folder(self.workspace) / self.name / f"{self.version}.json").unlink(missing_ok=True)

    def serialize(self) -> dict[str, Any]:
        return dict(self._doc)

    def _update(self, **changes: Any) -> None:
        self._doc.update(changes)
        (_images_folder(self.workspace) / self.name / f"{self.version}.json").write_text(
            json.dumps(self._doc, indent=2)
        )

    def __repr__(self) -> str:
        return (
            f"Image(name={self.name!r}, version={self.version}, state={self.creation_state!r}, "
            f"location={self.image_location!r})"
        )


class ContainerImage(Image):
    """v1's ``ContainerImage``."""

    @staticmethod
    def image_configuration(
        execution_script: str,
        runtime: str,
        conda_file: str | None = None,
        docker_file: str | None = None,
        schema_file: str | None = None,
        dependencies: Sequence[str] | None = None,
        enable_gpu: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
    ) -> ContainerImageConfig:
        return ContainerImageConfig(
            execution_script,
            runtime,
            conda_file,
            docker_file,
            schema_file,
            dependencies,
            enable_gpu,
            tags,
            properties,
            description,
            base_image,
            base_image_registry,
            cuda_version,
        )


IMAGE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62})$")


def _check_image_name(name: str) -> None:
    if not isinstance(name, str) or not IMAGE_NAME_RE.match(name):
        raise InvalidName(
            "image",
            str(name),
            "use up to 63 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
        )


def _load_image(workspace: Workspace, name: str, version: int | None) -> dict[str, Any]:
    folder = _images_folder(workspace) / name
    versions = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()) if folder.is_dir() else []
    if not versions or (version is not None and version not in versions):
        root = _images_folder(workspace)
        known = [p.name for p in root.iterdir()] if root.is_dir() else []
        raise as_v1(
            ImageNotFound(
                name if version is None else f"{name}:{version}",
                known,
                hint="Create it with Image.create(ws, name, models, image_config).",
            ),
            WebserviceException,
        )
    return json.loads((folder / f"{version if version is not None else versions[-1]}.json").read_text())
