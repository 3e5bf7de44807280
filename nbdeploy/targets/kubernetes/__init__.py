"""The ``aks`` target (alias ``kubernetes``): services as Deployments on a Kubernetes cluster.

Needs the official client: ``pip install 'nbdeploy[kubernetes]'`` (imported only when the target talks to a
cluster). See docs/kubernetes.md.
"""

from nbdeploy.targets.kubernetes.config import AksDeploymentConfig
from nbdeploy.targets.kubernetes.manifests import ManifestSpec, render_manifests
from nbdeploy.targets.kubernetes.target import KubernetesTarget

__all__ = ["AksDeploymentConfig", "KubernetesTarget", "ManifestSpec", "render_manifests"]
