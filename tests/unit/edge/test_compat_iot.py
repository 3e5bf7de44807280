"""v1's IotWebservice.deploy_configuration spelling maps to the edge target's config."""

from __future__ import annotations

import pytest

from nbdeploy.compat.azureml.contrib.iot import IotWebservice
from nbdeploy.errors import InvalidInput
from nbdeploy.targets.edge import EdgeDeploymentConfig


def test_deploy_configuration_maps_device_and_routes() -> None:
    config = IotWebservice.deploy_configuration(device_id="cam-17", routes={"r1": "FROM /* INTO $upstream"},
                                                aml_module="scorer", tags={"a": "b"})
    assert isinstance(config, EdgeDeploymentConfig)
    assert config.devices == ["cam-17"] and config.routes == {"r1": "FROM /* INTO $upstream"}
    assert config.module_name == "scorer" and config.tags == {"a": "b"}


def test_iot_hub_only_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="acr_credentials"):
        IotWebservice.deploy_configuration(device_id="d", acr_credentials={"u": "p"})
