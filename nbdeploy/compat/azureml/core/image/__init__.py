"""Mirror of ``azureml.core.image`` (the pre-1.0 image API), mapped onto nbdeploy's image builds."""

from nbdeploy.compat.azureml._package import ContainerImage, ContainerImageConfig, Image

__all__ = ["ContainerImage", "ContainerImageConfig", "Image"]
