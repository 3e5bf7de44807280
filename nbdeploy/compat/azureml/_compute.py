"""v1's ``azureml.core.compute``: an ``AksCompute`` is a kubeconfig context attached to the workspace.

nbdeploy attaches clusters that exist; it does not provision them (``provisioning_configuration`` refuses and
says how to attach). An attachment is a small JSON record in the workspace, ``compat/compute/<name>.json``,
holding the kubeconfig path, the context and an optional namespace. ``Model.deploy(..., deployment_target=aks)``
passes those to the Kubernetes target through :class:`~nbdeploy.specs.AksDeploymentConfig`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from nbdeploy.compat.azureml.exceptions import ComputeTargetException, NotSupportedInNbdeploy, as_v1, raises_v1
from nbdeploy.errors import InvalidInput, InvalidName, NbdeployError, NotFound
from nbdeploy.progress import make_sink
from nbdeploy.workspace import Workspace, as_workspace

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,31}$")
"""v1's compute name rule: 2-32 letters, digits and '-', starting with a letter."""


class ComputeTargetNotFound(NotFound):
    kind = "compute target"


def _folder(workspace: Workspace) -> Path:
    return workspace.path / "compat" / "compute"


@dataclass
class AksAttachConfiguration:
    """What ``AksCompute.attach_configuration`` returns: which kubeconfig context to attach."""

    kubeconfig: str
    context: str
    namespace: str | None = None
    cluster_name: str | None = None
    resource_group: str | None = None
    cluster_purpose: str | None = None

    def enable_ssl(self, *args: Any, **kwargs: Any) -> None:
        """Refused: TLS is the cluster's ingress business, not something nbdeploy switches on."""
        raise _refuse_ssl()

    def validate_configuration(self) -> None:
        """Checked when it was made (the kubeconfig and its context exist)."""


@dataclass
class _Record:
    name: str
    type: str
    kubeconfig: str
    context: str
    namespace: str | None
    cluster_name: str | None
    resource_group: str | None
    cluster_purpose: str | None
    created_time: str


class ComputeTarget:
    """v1's ``ComputeTarget(workspace, name)``: an attached compute target (raises ComputeTargetException if none)."""

    type = "Unknown"

    def __new__(cls, workspace: Workspace | None = None, name: str | None = None) -> ComputeTarget:
        if cls is ComputeTarget and name is not None:
            record = _load(as_workspace(workspace), name)
            cls = _CLASSES.get(record.type, ComputeTarget)
        return object.__new__(cls)

    @raises_v1(ComputeTargetException)
    def __init__(self, workspace: Workspace | None, name: str) -> None:
        self.workspace = as_workspace(workspace)
        self._record = _load(self.workspace, name)
        self.name = name

    # -- v1 attributes -----------------------------------------------------------------------------
    @property
    def provisioning_state(self) -> str:
        return self._state()[0]

    @property
    def provisioning_errors(self) -> list[dict[str, dict[str, str]]] | None:
        error = self._state()[1]
        return [{"error": {"message": error}}] if error else None

    @property
    def created_on(self) -> str:
        return self._record.created_time

    @property
    def cluster_location(self) -> str:
        return "local"

    @property
    def location(self) -> str:
        return "local"

    def _state(self) -> tuple[str, str]:
        return "Succeeded", ""

    def get_status(self) -> str:
        return self.provisioning_state

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "computeType": self.type,
            "provisioningState": self.provisioning_state,
            **{k: v for k, v in asdict(self._record).items() if k not in ("name", "type")},
        }

    # -- v1 verbs -------------------------------------------------------------------------------------
    @staticmethod
    @raises_v1(ComputeTargetException)
    def attach(workspace: Workspace | None, name: str, attach_configuration: Any) -> ComputeTarget:
        """Record ``attach_configuration`` under ``name`` in the workspace and return the target."""
        if not isinstance(attach_configuration, AksAttachConfiguration):
            raise InvalidInput(
                "ComputeTarget.attach: nbdeploy attaches Kubernetes clusters only; "
                "pass AksCompute.attach_configuration(cluster_name=<kube context>, kubeconfig=...)"
            )
        return AksCompute._attach(as_workspace(workspace), name, attach_configuration)

    @staticmethod
    @raises_v1(ComputeTargetException)
    def create(workspace: Workspace | None, name: str, provisioning_configuration: Any) -> ComputeTarget:
        """Provisioning refuses (nbdeploy attaches existing clusters); an attach configuration is attached."""
        if isinstance(provisioning_configuration, AksAttachConfiguration):
            return ComputeTarget.attach(workspace, name, provisioning_configuration)
        raise _refuse_provisioning("ComputeTarget.create")

    @staticmethod
    def list(workspace: Workspace | None) -> list[ComputeTarget]:
        ws = as_workspace(workspace)
        folder = _folder(ws)
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        return [ComputeTarget(ws, n) for n in names]

    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        """Check the attachment now (v1 waits for provisioning); raise ComputeTargetException if it is unusable."""
        sink = make_sink(show_output, workspace=self.workspace)
        state, error = self._state()
        sink.state(self.name, state, error)
        if error:
            raise ComputeTargetException(f"Compute target {self.name!r} is {state}: {error}")

    def detach(self) -> None:
        """Forget the attachment (the cluster is untouched)."""
        (_folder(self.workspace) / f"{self.name}.json").unlink(missing_ok=True)

    def delete(self) -> None:
        """v1 deletes the cloud resource; nbdeploy only detaches (the cluster is never removed)."""
        log.warning("ComputeTarget.delete detaches %r; nbdeploy never deletes clusters", self.name)
        self.detach()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workspace={self.workspace!r}, name={self.name!r})"


class AksCompute(ComputeTarget):
    """An existing Kubernetes cluster, reached through a kubeconfig context."""

    type = "AKS"

    class ClusterPurpose:
        DEV_TEST = "DevTest"
        FAST_PROD = "FastProd"

    @property
    def kubeconfig(self) -> str:
        return self._record.kubeconfig

    @property
    def context(self) -> str:
        return self._record.context

    @property
    def namespace(self) -> str | None:
        return self._record.namespace

    @property
    def cluster_fqdn(self) -> str | None:
        """The API server URL of the context (read from the kubeconfig)."""
        return _server_of(self.kubeconfig, self.context)

    @property
    def cluster_purpose(self) -> str | None:
        return self._record.cluster_purpose

    def _state(self) -> tuple[str, str]:
        """("Succeeded", "") when the API server of the context answers, else ("Failed", why)."""
        try:
            from nbdeploy.targets.kubernetes.cluster import connect

            connect(self.kubeconfig, self.context)
        except NbdeployError as exc:
            return "Failed", str(exc)
        return "Succeeded", ""

    def deployment_settings(self) -> dict[str, Any]:
        """The AksDeploymentConfig fields that send a deployment to this cluster."""
        return {
            "kubeconfig": self.kubeconfig,
            "context": self.context,
            "compute_target_name": self.name,
            "namespace": self.namespace,
        }

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Refused: nbdeploy does not change clusters (v1 uses it to turn on SSL)."""
        raise _refuse_ssl()

    @staticmethod
    def provisioning_configuration(*args: Any, **kwargs: Any) -> Any:
        """Refused: nbdeploy attaches existing clusters (see :meth:`attach_configuration`)."""
        raise _refuse_provisioning("AksCompute.provisioning_configuration")

    @staticmethod
    @raises_v1(ComputeTargetException)
    def attach_configuration(
        resource_group: str | None = None,
        cluster_name: str | None = None,
        resource_id: str | None = None,
        cluster_purpose: str | None = None,
        load_balancer_type: str | None = None,
        load_balancer_subnet: str | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> AksAttachConfiguration:
        """Which cluster to attach: ``context`` of ``kubeconfig`` (default ``$KUBECONFIG`` or ``~/.kube/config``).

        Without ``context``, v1's ``cluster_name`` is used when the kubeconfig has a context of that name, else
        the kubeconfig's current context. ``resource_id`` (``.../managedClusters/<name>``) names the cluster too.
        """
        from nbdeploy.targets.kubernetes.cluster import default_kubeconfig

        path = str(Path(kubeconfig or default_kubeconfig()).expanduser().absolute())
        contexts, current = _contexts(path)
        if cluster_name is None and resource_id:
            cluster_name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        if context is not None:
            if context not in contexts:
                raise InvalidInput(
                    f"Context {context!r} is not in the kubeconfig {path}; "
                    f"its contexts: {', '.join(contexts) or 'none'}"
                )
            chosen = context
        elif cluster_name in contexts:
            chosen = str(cluster_name)
        elif current:
            chosen = current
            if cluster_name:
                log.info(
                    "kubeconfig %s has no context %r; attaching its current context %r", path, cluster_name, current
                )
        else:
            raise InvalidInput(
                f"The kubeconfig {path} has no current context and none named {cluster_name!r}; "
                f"pass context= (its contexts: {', '.join(contexts) or 'none'})"
            )
        return AksAttachConfiguration(path, chosen, namespace, cluster_name, resource_group, cluster_purpose)

    @staticmethod
    def _attach(workspace: Workspace, name: str, config: AksAttachConfiguration) -> AksCompute:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidName("compute target", str(name), "use 2-32 letters, digits and '-', starting with a letter")
        workspace.ensure()
        folder = _folder(workspace)
        folder.mkdir(parents=True, exist_ok=True)
        record = _Record(
            name,
            AksCompute.type,
            config.kubeconfig,
            config.context,
            config.namespace,
            config.cluster_name,
            config.resource_group,
            config.cluster_purpose,
            datetime.now(timezone.utc).isoformat(),
        )
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
        os.replace(tmp, folder / f"{name}.json")
        log.info("attached compute target %r: context %r of %s", name, config.context, config.kubeconfig)
        return AksCompute(workspace, name)


class AmlCompute(ComputeTarget):
    """v1's training cluster: refused (nbdeploy covers deployment)."""

    type = "AmlCompute"

    @staticmethod
    def provisioning_configuration(*args: Any, **kwargs: Any) -> Any:
        raise as_v1(
            NotSupportedInNbdeploy("AmlCompute (training clusters) is not part of nbdeploy, which covers deployment."),
            ComputeTargetException,
        )

    @staticmethod
    def supported_vmsizes(*args: Any, **kwargs: Any) -> Any:
        return AmlCompute.provisioning_configuration()


class ComputeInstance(AmlCompute):
    """v1's notebook VM: refused."""

    type = "ComputeInstance"


_CLASSES: dict[str, type[ComputeTarget]] = {"AKS": AksCompute}


def _refuse_provisioning(what: str) -> NbdeployError:
    return as_v1(
        NotSupportedInNbdeploy(
            f"{what}: nbdeploy does not provision clusters; it attaches existing ones. Use "
            "ComputeTarget.attach(ws, name, "
            "AksCompute.attach_configuration(cluster_name=<kube context>, kubeconfig=<path>))."
        ),
        ComputeTargetException,
    )


def _refuse_ssl() -> NbdeployError:
    return as_v1(
        NotSupportedInNbdeploy(
            "Enabling SSL on an AKS compute target is refused: nbdeploy does not change clusters. "
            "Serve TLS with the cluster's own ingress controller and AksDeploymentConfig(ingress_host=...), "
            "or terminate TLS in front of it."
        ),
        ComputeTargetException,
    )


def _load(workspace: Workspace, name: str) -> _Record:
    path = _folder(workspace) / f"{name}.json"
    if not path.is_file():
        folder = _folder(workspace)
        known = [p.stem for p in folder.glob("*.json")] if folder.is_dir() else []
        raise as_v1(
            ComputeTargetNotFound(
                name,
                known,
                hint="Attach one with ComputeTarget.attach(ws, name, AksCompute.attach_configuration(...)).",
            ),
            ComputeTargetException,
        )
    return _Record(**json.loads(path.read_text()))


def _kubeconfig_doc(path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise InvalidInput(f"The kubeconfig {path} does not exist; pass kubeconfig= or set KUBECONFIG.")
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"The kubeconfig {path} cannot be read: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"The kubeconfig {path} is not a kubeconfig (not a YAML mapping).")
    return doc


def _contexts(path: str) -> tuple[list[str], str | None]:
    doc = _kubeconfig_doc(path)
    names = [str(c["name"]) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
    current = doc.get("current-context")
    return names, str(current) if current else None


def _server_of(path: str, context: str) -> str | None:
    try:
        doc = _kubeconfig_doc(path)
    except InvalidInput:
        return None
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == context), {})
    cluster = next(
        (c.get("cluster") or {} for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {}
    )
    return cluster.get("server")


def compute_target_named(workspace: Workspace, name: str) -> AksCompute:
    """The attached AKS compute target ``name`` (for ``compute_target_name=`` in a deployment config)."""
    target = ComputeTarget(workspace, name)
    if not isinstance(target, AksCompute):
        raise as_v1(InvalidInput(f"Compute target {name!r} is {target.type}, not AKS."), ComputeTargetException)
    return target
