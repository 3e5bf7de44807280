"""v1's ``azureml.contrib.iot`` spelling: ``IotWebservice.deploy_configuration(...)`` -> the edge target's config.

``device_id`` names one saved device (``nbdeploy device add``); ``routes`` go to the exported IoT Edge manifest
(``nbdeploy edge export``); ``aml_module`` names the module there. ``external_modules``,
``acr_credentials`` and ``compute_target_name`` (IoT Hub pieces) have no counterpart and are refused when given.
As in v1, ``run()`` is not offered by the class (score through the devices' addresses instead).
"""

from __future__ import annotations

from typing import Any

from nbdeploy.compat.azureml._v1 import Webservice
from nbdeploy.errors import InvalidInput


class IotWebservice(Webservice):
    """v1's ``IotWebservice``: a module on edge devices (the ``edge`` target)."""

    _compute_types = ("edge",)

    @staticmethod
    def deploy_configuration(
        routes: dict[str, str] | None = None,
        device_id: str | None = None,
        aml_module: Any = None,
        external_modules: Any = None,
        acr_credentials: Any = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        compute_target_name: str | None = None,
    ) -> Any:
        from nbdeploy.targets.edge import EdgeDeploymentConfig

        for key, value in (
            ("external_modules", external_modules),
            ("acr_credentials", acr_credentials),
            ("compute_target_name", compute_target_name),
        ):
            if value:
                raise InvalidInput(
                    f"IotWebservice.deploy_configuration({key}=...) is an IoT Hub setting nbdeploy "
                    "does not have; deploy to saved devices (device_id=...) instead."
                )
        module_name = getattr(aml_module, "name", aml_module) if aml_module is not None else None
        values: dict[str, Any] = {
            "routes": routes,
            "device_id": device_id,
            "tags": tags,
            "properties": properties,
            "description": description,
            "module_name": module_name,
        }
        return EdgeDeploymentConfig(**{k: v for k, v in values.items() if v is not None})

    def run(self, input_data: Any, timeout: float = 60.0) -> Any:
        raise InvalidInput("Class does not support run method.")


__all__ = ["IotWebservice"]
