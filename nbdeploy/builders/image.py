"""The Docker-image builder: a scoring image per revision, on the local Docker engine.

The image is tagged by its recipe digest (bundle, environment, scoring server, Dockerfile), so an unchanged
revision finds its image without building or reading model bytes. Targets that run elsewhere (a cluster, a
remote engine) ship or push what this builder made.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from nbdeploy.builders.base import Artifact, Builder, BuildRequest
from nbdeploy.builders.base_image import default_base_image
from nbdeploy.builders.dockerfile import ImageSpec

CONTAINER_PORT = 5001
"""The port the scoring server listens on inside images (bridge networking)."""


class ImageBuilder(Builder):
    """Builds (or finds up to date) the scoring image of a revision."""

    kind = "docker-image"
    settings: Any = None
    """A :class:`~nbdeploy.builders.docker_builder.BuildSettings` (host proxies, CA, pip); None: from the environment."""

    def build(self, request: BuildRequest) -> Artifact:
        from nbdeploy.builders.docker_builder import BuildSettings, build_image, docker_client
        from nbdeploy.builders.lock import describe_lock

        conda = [
            p for p in getattr(request.environment, "conda_packages", None) or [] if not p.startswith(("python", "pip"))
        ]
        if conda:
            self.progress(f"warning: conda packages are not installed in images (use pip): {', '.join(conda)}")
        spec = image_spec_for(request)
        settings = self.settings if self.settings is not None else BuildSettings.from_env()
        if settings.lock_dir is None:  # locks live with the workspace, beside its environments
            settings = dataclasses.replace(settings, lock_dir=self.workspace.cache_dir / "locks")
        built = build_image(
            docker_client(),
            spec,
            request.bundle.path,
            repository(request.service),
            request.bundle.source_dir,
            settings=settings,
            progress=self.progress,
            bundle_digest=request.bundle.digest,
        )
        details: dict[str, Any] = {"gpu": spec.gpu, "seconds": round(built.seconds, 3)}
        if built.lock is not None:
            details["lock"] = {"digest": built.lock.digest, "packages": list(built.lock.packages)}
            self.progress(describe_lock(built.lock))
        return Artifact(self.kind, built.tag, built.digest, id=built.image_id, cached=built.cached, details=details)

    def remove(self, artifact: Artifact) -> None:
        from nbdeploy.builders.docker_builder import docker_client, import_docker

        docker = import_docker()
        try:
            docker_client().images.remove(artifact.reference)
        except docker.errors.APIError as exc:
            self.progress(f"image {artifact.reference} kept: {exc}")


def repository(service: str) -> str:
    """The image repository of a service's revisions."""
    return f"nbdeploy/{service.lower()}"


def image_spec_for(spec: BuildRequest, base_image: str | None = None) -> ImageSpec:
    """The image for one revision: its environment's packages, base and variables, its bundle's layout."""
    env = spec.environment
    bundle = spec.bundle
    docker_section = getattr(env, "docker", None)
    pip_options = getattr(env, "pip_options", None)
    ca_texts = [Path(p).read_text() for p in (getattr(pip_options, "ca_certificates", None) or [])]
    labels = {
        "nbdeploy.service": spec.service,
        "nbdeploy.bundle": bundle.digest,
        "nbdeploy.models": ",".join(bundle.model_ids),
    }
    if env is not None:
        labels["nbdeploy.environment"] = env.name
    return ImageSpec(
        base_image=base_image or default_base_image(getattr(docker_section, "base_image", None)),
        base_dockerfile=getattr(docker_section, "base_dockerfile", None),
        system_packages=tuple(getattr(docker_section, "system_packages", None) or ()),
        pip_requirements=tuple(env.pip_packages) if env is not None else (),
        pip_index_url=getattr(pip_options, "index_url", None),
        pip_extra_index_urls=tuple(getattr(pip_options, "extra_index_urls", None) or ()),
        pip_trusted_hosts=tuple(getattr(pip_options, "trusted_hosts", None) or ()),
        ca_bundle="\n".join(ca_texts) or None,
        env=dict(getattr(env, "environment_variables", None) or {}),
        labels=labels,
        entry_script=bundle.entry_script,
        source_dir=bundle.source_dir,
        model_dir=bundle.model_dir,
        has_models=bool(bundle.model_ids),
        gpu=bool(getattr(docker_section, "gpu_support", False)),
        port=CONTAINER_PORT,
    )
