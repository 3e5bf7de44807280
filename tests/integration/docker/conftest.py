"""Fixtures for tests against the real Docker engine (``bash tests/engines/docker.sh up``).

Every resource a test creates carries a label naming this run and is removed in teardown. Under CI
(``CI=true``) a missing engine or base image fails the tests; elsewhere they are skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .docker_testapp import BASE_IMAGE, RUN_ID, TEST_LABEL


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: Docker tests must run, never skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    from nbdeploy.builders.docker_builder import docker_client
    from nbdeploy.errors import EngineUnavailable

    try:
        client = docker_client()
    except EngineUnavailable as exc:
        _unavailable(str(exc))
    try:
        client.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        _unavailable(f"base image {BASE_IMAGE} missing: bash tests/engines/docker.sh up")
    started = int(time.time())
    yield client
    # build-cache leftovers of this run: deps stages, and the last good step of builds that failed
    for image in client.images.list(filters={"dangling": True}):
        labels = image.labels or {}
        if "nbdeploy.stage" not in labels and "nbdeploy.base.key" not in labels:
            continue
        created = image.attrs.get("Created", "")
        if created and _epoch(created) >= started - 1:
            try:
                client.images.remove(image.id, force=True)
            except Exception:  # noqa: BLE001 - shared with a concurrent build
                pass


def _epoch(created: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00").timestamp() if "T" in created else 0.0


class Resources:
    """Names tests use, and what teardown removes."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.services: list[str] = []
        self.repositories: list[str] = []

    def service(self) -> str:
        name = f"t{RUN_ID}-{len(self.services)}"
        self.services.append(name)
        self.repositories.append(f"nbdeploy/{name}")
        return name

    def repository(self) -> str:
        repo = f"nbdeploy-test/{RUN_ID}-{len(self.repositories)}"
        self.repositories.append(repo)
        return repo

    def cleanup(self) -> None:
        for name in self.services:
            for c in self.client.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"}):
                c.remove(force=True)
        for image in self.client.images.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
            self._remove_image(image.id)
        for repo in self.repositories:
            for image in self.client.images.list(name=repo):
                self._remove_image(image.id)

    def _remove_image(self, image_id: str) -> None:
        try:
            self.client.images.remove(image_id, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


@pytest.fixture
def resources(engine: Any) -> Iterator[Resources]:
    res = Resources(engine)
    yield res
    res.cleanup()
