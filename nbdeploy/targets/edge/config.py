"""``EdgeDeploymentConfig``: which devices, the health policy, waves, retries (v1's ``IotWebservice`` spelling too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from nbdeploy.errors import InvalidInput, InvalidSpec
from nbdeploy.specs.deployment import DeploymentConfig, port_number, positive
from nbdeploy.targets.edge.policy import Policy

RESTART_POLICIES = ("always", "unless-stopped", "on-failure", "no")


@dataclass
class EdgeDeploymentConfig(DeploymentConfig):
    """A module on a fleet of devices (saved with ``nbdeploy device add``), rolled out in waves.

    ``devices`` (names) or ``device_selector`` (``site=plant-3``) choose the devices; ``policy`` says when the
    service is Healthy (``all``, ``at least N``, ``N%``); ``canary`` devices are updated first and the rest
    only if they become Healthy; each device retries ``max_retries`` times, waiting ``retry_backoff_s``,
    doubled after each failure (at most 5 minutes), and otherwise goes back to its last-known-good container.
    """

    target: ClassVar[str] = "edge"
    compute_type: ClassVar[str] = "IOT"
    compute_type_aliases: ClassVar[tuple[str, ...]] = ("IoTEdge", "edge")
    json_keys: ClassVar[dict[str, str]] = {
        "devices": "devices",
        "deviceId": "device_id",
        "deviceSelector": "device_selector",
        "policy": "policy",
        "canary": "canary",
        "maxRetries": "max_retries",
        "retryBackoffSeconds": "retry_backoff_s",
        "port": "port",
        "containerResourceRequirements.cpu": "cpu_cores",
        "containerResourceRequirements.memoryInGB": "memory_gb",
        "restartPolicy": "restart_policy",
        "routes": "routes",
        "moduleName": "module_name",
        "deviceTimeoutSeconds": "device_timeout_s",
    }

    devices: list[str] | str = field(default_factory=list)  # "a,b" is accepted (stored as a list)
    device_id: str | None = None
    """v1's ``IotWebservice.deploy_configuration(device_id=...)``: one device, added to ``devices``."""
    device_selector: str | None = None
    policy: str = "all"
    canary: int = 1
    max_retries: int = 2
    retry_backoff_s: float = 2.0
    port: int | None = None
    """The port the module publishes on each device (default: the previous revision's, else a free one)."""
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "always"
    routes: dict[str, str] = field(default_factory=dict)
    """IoT Edge routes for the exported manifest (v1's ``routes``)."""
    module_name: str | None = None
    """The module's name in the exported manifest (default: the service name)."""
    device_timeout_s: float = 120.0
    """How long one device may take to become Healthy in one attempt."""

    def validate(self) -> None:
        super().validate()
        if isinstance(self.devices, str):
            self.devices = [d.strip() for d in self.devices.split(",") if d.strip()]
        if not isinstance(self.devices, list) or not all(isinstance(d, str) and d for d in self.devices):
            raise InvalidSpec("devices", f"must be a list of device names, got {self.devices!r}")
        if self.device_id and self.device_id not in self.devices:
            self.devices = [*self.devices, self.device_id]
        if self.devices and self.device_selector:
            raise InvalidSpec("devices", "give either devices or device_selector, not both")
        if self.device_selector is not None:
            from nbdeploy.remote.store import parse_selector

            try:
                if not parse_selector(self.device_selector):
                    raise InvalidSpec("device_selector", "is empty; use key=value[,key=value]")
            except InvalidInput as exc:
                raise InvalidSpec("device_selector", str(exc)) from None
        Policy.parse(self.policy)
        for key in ("canary", "max_retries"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidSpec(key, f"must be an integer >= 0, got {value!r}")
        if (
            isinstance(self.retry_backoff_s, bool)
            or not isinstance(self.retry_backoff_s, (int, float))
            or self.retry_backoff_s < 0
        ):
            raise InvalidSpec("retry_backoff_s", f"must be a number of seconds >= 0, got {self.retry_backoff_s!r}")
        positive("device_timeout_s", self.device_timeout_s)
        if self.port is not None:
            port_number("port", self.port)
        for key in ("cpu_cores", "memory_gb"):
            if getattr(self, key) is not None:
                positive(key, getattr(self, key))
        if self.restart_policy not in RESTART_POLICIES:
            raise InvalidSpec("restart_policy", f"{self.restart_policy!r} is not one of {', '.join(RESTART_POLICIES)}")
        if not isinstance(self.routes, dict):
            raise InvalidSpec("routes", "must be a mapping of route name -> 'FROM ... INTO ...'")

    @property
    def parsed_policy(self) -> Policy:
        return Policy.parse(self.policy)

    def selector(self) -> dict[str, str]:
        from nbdeploy.remote.store import parse_selector

        return parse_selector(self.device_selector)

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        doc.pop("deviceId", None)  # already in devices
        return doc
