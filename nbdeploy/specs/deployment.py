"""Deployment configurations: one class per target behind :class:`DeploymentConfig`.

Each target declares its config class beside itself (``Target.config_class``, in ``nbdeploy/targets/``): it
knows its target name, validates its values (v1's rules where v1 had them) and reads and writes its part of
v1's ``deploymentconfig.json``. This module holds the common base and finds classes through the target
registry, so it never lists targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from nbdeploy.errors import InvalidInput, InvalidSpec, TargetNotAvailable


@dataclass
class DeploymentConfig:
    """Settings common to every target. Subclasses add their own fields."""

    target: ClassVar[str] = ""
    """The name of the target that runs this config."""
    compute_type: ClassVar[str] = ""
    """The ``computeType`` value in deploymentconfig.json (v1's spelling; also ``Webservice.compute_type``)."""
    compute_type_aliases: ClassVar[tuple[str, ...]] = ()
    """Other ``computeType`` values read as this config."""
    json_keys: ClassVar[dict[str, str]] = {}
    """deploymentconfig.json key -> field name, for the target's own keys."""

    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    auth_enabled: bool = False
    primary_key: str | None = None
    secondary_key: str | None = None
    scoring_timeout_ms: int | None = None
    smoke_input: str | None = None
    """A request body POSTed to /score before an update switches traffic (default: derived from the swagger example)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidSpec` naming the first bad value."""
        if self.scoring_timeout_ms is not None:
            positive("scoring_timeout_ms", self.scoring_timeout_ms)
        for key in ("primary_key", "secondary_key"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or len(value) < 8):
                raise InvalidSpec(key, "must be a string of at least 8 characters")

    # -- deploymentconfig.json ------------------------------------------------------------------
    _COMMON_KEYS: ClassVar[dict[str, str]] = {
        "tags": "tags",
        "properties": "properties",
        "description": "description",
        "authEnabled": "auth_enabled",
        "scoringTimeoutMs": "scoring_timeout_ms",
        "smokeInput": "smoke_input",
    }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"computeType": self.compute_type}
        for key, attr in {**self._COMMON_KEYS, **self.json_keys}.items():
            value = getattr(self, attr)
            if value not in (None, {}, []):
                _set_path(doc, key, value)
        if self.primary_key or self.secondary_key:
            doc["keys"] = {"primaryKey": self.primary_key, "secondaryKey": self.secondary_key}
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> DeploymentConfig:
        known = {**cls._COMMON_KEYS, **cls.json_keys}
        allowed_top = {k.split(".")[0] for k in known} | {"computeType", "keys"}
        unknown = set(data) - allowed_top
        if unknown:
            raise InvalidSpec(
                sorted(unknown)[0],
                f"unknown key for computeType {cls.compute_type!r}",
                allowed=allowed_top,
                source=source,
            )
        kwargs: dict[str, Any] = {}
        for key, attr in known.items():
            value = _get_path(data, key)
            if value is not None:
                kwargs[attr] = value
        keys = data.get("keys") or {}
        if keys:
            kwargs["primary_key"] = keys.get("primaryKey")
            kwargs["secondary_key"] = keys.get("secondaryKey")
        try:
            return cls(**kwargs)
        except TypeError as exc:  # pragma: no cover - json_keys out of sync with fields
            raise InvalidSpec(cls.compute_type, str(exc), source=source) from exc

    def merged(self, **changes: Any) -> DeploymentConfig:
        """A copy with ``changes`` applied (None values ignored)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**values)


def deployment_config_class(target: str) -> type[DeploymentConfig]:
    """The config class of a target (name, alias or v1 ``computeType``), from the target registry."""
    from nbdeploy.targets.registry import config_class_for

    try:
        return config_class_for(target)
    except TargetNotAvailable as exc:
        raise InvalidSpec("target", str(exc)) from None


def deployment_config_from_dict(data: dict[str, Any], source: str | None = None) -> DeploymentConfig:
    """Read a parsed deploymentconfig.json."""
    from nbdeploy.targets.registry import target_classes

    if not isinstance(data, dict):
        raise InvalidSpec("deployment config", "must be a JSON/YAML object", source=source)
    compute_types = sorted({cls.config_class.compute_type for cls in target_classes()})
    compute_type = data.get("computeType")
    if not compute_type:
        raise InvalidSpec("computeType", "is required", allowed=compute_types, source=source)
    try:
        cls = deployment_config_class(str(compute_type))
    except InvalidSpec:
        raise InvalidSpec(
            "computeType", f"{compute_type!r} is not supported", allowed=compute_types, source=source
        ) from None
    return cls.from_dict(data, source=source)


def load_deployment_config(path: str | os.PathLike[str]) -> DeploymentConfig:
    """Read deploymentconfig.json (or .yml)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Deployment config {file} does not exist.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InvalidSpec(str(file), f"not valid JSON or YAML: {exc}") from exc
    return deployment_config_from_dict(data, source=str(file))


def positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidSpec(key, f"must be a number greater than 0, got {value!r}")


def port_number(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(key, f"must be an integer in 1-65535, got {value!r}")


def _get_path(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
