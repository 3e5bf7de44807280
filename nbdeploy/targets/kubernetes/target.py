"""The ``aks`` target (alias ``kubernetes``): each service is a Deployment + Service on a Kubernetes cluster.

``start`` builds the revision's image with the Docker builder (by content digest; pushed when a registry is
configured, else the cluster shares the local engine), renders the objects (:mod:`.manifests`) and applies
them with server-side apply. An update is the same apply on the existing Deployment: a rolling update with
``maxUnavailable: 0``, so the old pods serve until new ones are ready. ``abort`` re-applies the objects of the
last good revision (kept in its handle), which rolls the Deployment back; ``retire`` has nothing to do.
``stop`` deletes every object labelled ``nbdeploy.service=<name>`` and waits for the pods to go.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbdeploy.errors import Conflict, InvalidSpec, TargetNotAvailable
from nbdeploy.targets.base import Availability, Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.kubernetes.cluster import Cluster, api_error, connect, import_kubernetes
from nbdeploy.targets.kubernetes.config import AksDeploymentConfig
from nbdeploy.targets.kubernetes.manifests import (
    CONTAINER_PORT,
    ManifestSpec,
    keys_document,
    pick_hpa_api,
    render_manifests,
    render_secret,
    secret_name,
)
from nbdeploy.targets.kubernetes.objects import (
    apply_all,
    best_effort,
    delete_all,
    delete_namespace_if_unused,
    delete_object,
    ensure_namespace,
    list_objects,
    load_balancer_address,
    node_address,
    node_port,
    observe,
    pod_log,
    prune,
    push_image,
    service_events,
    wait_for_key,
)
from nbdeploy.targets.kubernetes.status import Verdict, event_lines
from nbdeploy.targets.local_docker import docker_availability
from nbdeploy.targets.options import Option

if TYPE_CHECKING:
    from nbdeploy.builders.base import BuildRequest

log = logging.getLogger(__name__)

ANNOTATION_KEYS = "nbdeploy.io/keys-version"
STOP_SETTLE_S = 5.0
"""After the grace period, how long pods may take to go before they are force-deleted."""
ROLLBACK_WAIT_S = 60.0
KEYS_WAIT_S = 60.0


class KubernetesTarget(Target):
    """Runs services as Deployments on the cluster of a kubeconfig context."""

    name = "aks"
    aliases = ("kubernetes",)
    description = "A Deployment + Service on a Kubernetes cluster: replicas, autoscaling, rolling updates."
    config_class = AksDeploymentConfig
    extra = "kubernetes"
    options = (
        Option("--replicas", "num_replicas", int, "Fixed number of replicas (turns autoscaling off)."),
        Option("--kubeconfig", "kubeconfig", str, "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."),
        Option("--context", "context", str, "kubeconfig context (default: its current context)."),
        Option(
            "--namespace", "namespace", str, "Namespace (default: the context's, else 'default'); created when missing."
        ),
        Option("--autoscale-min", "autoscale_min_replicas", int, "Autoscaling: fewest replicas (default 1)."),
        Option("--autoscale-max", "autoscale_max_replicas", int, "Autoscaling: most replicas (default 10)."),
        Option(
            "--autoscale-target",
            "autoscale_target_utilization",
            int,
            "Autoscaling: target CPU utilization in % (default 70).",
        ),
        Option("--cpu", "cpu_cores", float, "CPU cores requested per replica (default 0.1)."),
        Option("--memory-gb", "memory_gb", float, "Memory requested per replica in GB (default 0.5)."),
        Option("--cpu-limit", "cpu_cores_limit", float, "CPU limit per replica (at least --cpu)."),
        Option("--memory-gb-limit", "memory_gb_limit", float, "Memory limit per replica in GB (at least --memory-gb)."),
        Option("--gpu", "gpu_cores", int, "GPUs per replica (nvidia.com/gpu)."),
        Option(
            "--service-type",
            "service_type",
            str,
            "How the service is exposed.",
            ("ClusterIP", "NodePort", "LoadBalancer"),
        ),
        Option(
            "--image-registry",
            "image_registry",
            str,
            "Push the image here (default: the cluster shares the local Docker engine).",
        ),
        Option("--image-pull-secret", "image_pull_secret", str, "Secret for pulling from --image-registry."),
    )

    @classmethod
    def availability(cls) -> Availability:
        try:
            import_kubernetes()
        except TargetNotAvailable as exc:
            return Availability(False, str(exc))
        return docker_availability()  # images are built on the local engine

    @classmethod
    def option_values(cls, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """A replica count turns autoscaling off; an autoscaling bound turns it on."""
        values = super().option_values(parsed)
        if "num_replicas" in values:
            values.setdefault("autoscale_enabled", False)
        if any(k.startswith("autoscale_") and k != "autoscale_enabled" for k in values):
            values.setdefault("autoscale_enabled", True)
        return values

    def artifact_kind(self, request: BuildRequest) -> str | None:
        self._checked(request.config)
        return "docker-image"

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _checked(config: Any) -> AksDeploymentConfig:
        if not isinstance(config, AksDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the aks target needs an AksDeploymentConfig, got {type(config).__name__}"
            )
        if config.token_auth_enabled:
            raise InvalidSpec(
                "token_auth_enabled", "token auth is not available on the aks target; use key auth (auth_enabled=True)"
            )
        return config

    @staticmethod
    def _cluster(handle: Handle) -> Cluster:
        return connect(handle.get("kubeconfig"), handle.get("context"))

    def _workspace_id(self) -> str:
        return hashlib.sha256(str(self.workspace.path).encode()).hexdigest()[:16]

    # -- verbs ---------------------------------------------------------------------------------------
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        config = self._checked(spec.config)
        cluster = connect(config.kubeconfig, config.context)
        namespace = config.namespace or cluster.namespace
        created_namespace = ensure_namespace(cluster, namespace, config.create_namespace, spec.service)
        image = self._image(spec, config)
        hpa_api = pick_hpa_api(cluster.served_versions("autoscaling")) if config.autoscaling else "autoscaling/v1"
        manifests = render_manifests(
            ManifestSpec(
                service=spec.service,
                revision=spec.revision,
                namespace=namespace,
                image=image,
                config=config,
                keys=spec.keys,
                workspace_id=self._workspace_id(),
                bundle_digest=spec.bundle.digest,
                model_ids=tuple(spec.bundle.model_ids),
                hpa_api_version=hpa_api,
            )
        )
        try:
            applied = apply_all(cluster, manifests, namespace)
            prune(cluster, spec.service, namespace, manifests)
        except BaseException:
            if previous is None:  # a first deploy leaves nothing half-made behind
                best_effort(lambda: delete_all(cluster, spec.service, namespace, hpa_api))
            raise
        deployment = applied[("Deployment", spec.service)]
        port = node_port(applied[("Service", spec.service)])
        self.progress(f"applied {', '.join(f'{k}/{n}' for k, n in applied)} in namespace {namespace}")
        return {
            "kubeconfig": cluster.kubeconfig,
            "context": cluster.context,
            "namespace": namespace,
            "name": spec.service,
            "revision": spec.revision,
            "image": image,
            "generation": deployment["metadata"].get("generation", 0),
            "service_type": config.service_type,
            "node_port": port,
            "ingress_host": config.ingress_host,
            "hpa_api": hpa_api if config.autoscaling else None,
            "keys": spec.keys is not None,
            "namespace_created": created_namespace or bool((previous or {}).get("namespace_created")),
            "manifests": [
                m for m in manifests if m["kind"] != "Secret"
            ],  # what abort() restores; keys stay in the store
        }

    def _image(self, spec: RevisionSpec, config: AksDeploymentConfig) -> str:
        if spec.artifact is None or spec.artifact.kind != "docker-image":
            raise InvalidSpec("artifact", "the aks target runs a built image; build the revision first (deploy() does)")
        if not config.image_registry:
            return spec.artifact.reference  # the kubelet uses this engine (imagePullPolicy Never)
        from nbdeploy.builders.docker_builder import docker_client

        return push_image(docker_client(), spec.artifact.reference, config.image_registry, self.progress)

    def status(self, handle: Handle) -> Status:
        cluster = self._cluster(handle)
        verdict, _pods, events = observe(cluster, handle)
        uri = self.scoring_uri(handle) if verdict.state != State.FAILED or verdict.rollout_complete else None
        if verdict.rollout_complete:
            from nbdeploy.targets.net import probe

            endpoint = self.endpoint(handle)
            ok, detail = (
                probe(endpoint.base_url + "/health/ready", timeout=5)
                if endpoint
                else (False, "no URL reaches the service")
            )
            if ok:
                return Status(State.HEALTHY, scoring_uri=uri, details=verdict.details)
            return Status(
                State.UNHEALTHY,
                f"all replicas are available but a smoke request failed: {detail}",
                evidence="\n".join(event_lines(events)[-20:]),
                scoring_uri=uri,
                details=verdict.details,
            )
        evidence = ""
        if verdict.state in (State.FAILED, State.UNHEALTHY, State.UNSCHEDULABLE):
            evidence = self._evidence(cluster, handle, verdict, events)
        return Status(verdict.state, verdict.reason, evidence=evidence, scoring_uri=uri, details=verdict.details)

    def _evidence(self, cluster: Cluster, handle: Handle, verdict: Verdict, events: list[dict[str, Any]]) -> str:
        parts = []
        if verdict.evidence_pod:
            text = pod_log(cluster, handle["namespace"], verdict.evidence_pod, 60, previous=verdict.previous_log)
            if not text and verdict.previous_log:
                text = pod_log(cluster, handle["namespace"], verdict.evidence_pod, 60)
            label = " (previous container)" if verdict.previous_log else ""
            parts.append(f"--- log of pod {verdict.evidence_pod}{label} ---\n{text}")
        lines = event_lines(events)
        if lines:
            parts.append("--- events ---\n" + "\n".join(lines[-15:]))
        return "\n".join(parts)

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        cluster = self._cluster(handle)
        ns = handle["namespace"]
        pods = list_objects(cluster, "v1", "Pod", ns, handle["name"])
        out: list[str] = []
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            name = pod["metadata"]["name"]
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if any(cs.get("restartCount", 0) for cs in statuses):
                previous = pod_log(cluster, ns, name, num_lines, previous=True)
                out += [f"[{name} previous] {line}" for line in previous.splitlines()]
            out += [f"[{name}] {line}" for line in pod_log(cluster, ns, name, num_lines).splitlines()]
        events = service_events(cluster, handle, pods)
        if events:
            out += ["--- events ---", *event_lines(events)]
        return "\n".join(out)

    def stop(self, handle: Handle) -> None:
        from nbdeploy.targets.kubernetes.portforward import stop_forwarder

        cluster = self._cluster(handle)
        ns, name = handle["namespace"], handle["name"]
        stop_forwarder(cluster.kubeconfig, cluster.context, ns, name)
        delete_all(cluster, name, ns, handle.get("hpa_api"))
        grace = next(
            (
                m["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
                for m in handle.get("manifests", [])
                if m["kind"] == "Deployment"
            ),
            30,
        )
        deadline = time.monotonic() + grace + STOP_SETTLE_S
        while (pods := list_objects(cluster, "v1", "Pod", ns, name)) and time.monotonic() < deadline:
            time.sleep(0.3)
        if pods:
            # their containers had the grace period to drain; a kubelet that lost track of an exited container
            # (dockershim's "No such container" race) can keep the pod object for another minute
            for pod in pods:
                delete_object(cluster, "v1", "Pod", ns, pod["metadata"]["name"], grace_period=0)
            deadline = time.monotonic() + STOP_SETTLE_S
            while list_objects(cluster, "v1", "Pod", ns, name) and time.monotonic() < deadline:
                time.sleep(0.3)
        if handle.get("namespace_created"):
            delete_namespace_if_unused(cluster, ns, name)

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        return new  # the rolling update moved the traffic already

    def retire(self, old: Handle, new: Handle) -> None:
        """Nothing: the Deployment replaced the old pods during the rollout."""

    def abort(self, new: Handle, old: Handle | None) -> None:
        """Roll the Deployment back to the last good revision (``old``'s objects); its pods kept serving."""
        if old is None or not old.get("manifests"):
            self.stop(new)
            return
        cluster = self._cluster(new)
        ns = old["namespace"]
        applied = apply_all(cluster, old["manifests"], ns)
        secret = [{"kind": "Secret", "metadata": {"name": secret_name(old["name"])}}] if old.get("keys") else []
        prune(cluster, old["name"], ns, old["manifests"] + secret)
        generation = applied[("Deployment", old["name"])]["metadata"].get("generation", 0)
        deadline = time.monotonic() + ROLLBACK_WAIT_S
        while time.monotonic() < deadline:
            verdict, _, _ = observe(cluster, {**old, "generation": generation})
            if verdict.rollout_complete:
                break
            time.sleep(0.3)

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        """Patch the Secret; nudge the pods so the kubelet reloads the mounted file; wait until they accept the key."""
        if keys is None:
            raise Conflict("Key auth was off when this revision started; update the service with auth_enabled=True.")
        cluster = self._cluster(handle)
        ns, name = handle["namespace"], handle["name"]
        manifest = next((m for m in handle.get("manifests", []) if m["kind"] == "Deployment"), None)
        if manifest is None:
            raise Conflict(f"revision {handle.get('revision')} of {name!r} has no Deployment record")
        secret = render_secret(
            ManifestSpec(
                service=name,
                revision=handle["revision"],
                namespace=ns,
                image=handle["image"],
                config=AksDeploymentConfig(num_replicas=1),
                keys=keys,
                workspace_id=self._workspace_id(),
            )
        )
        apply_all(cluster, [secret], ns)
        version = hashlib.sha256(keys_document(keys).encode()).hexdigest()[:16]
        pods = [p for p in list_objects(cluster, "v1", "Pod", ns, name) if not p["metadata"].get("deletionTimestamp")]
        for pod in pods:  # a pod update makes the kubelet sync the pod, and with it its secret volume
            try:
                cluster.resource("v1", "Pod").patch(
                    name=pod["metadata"]["name"],
                    namespace=ns,
                    body={"metadata": {"annotations": {ANNOTATION_KEYS: version}}},
                    content_type="application/merge-patch+json",
                )
            except import_kubernetes().client.exceptions.ApiException as exc:
                if getattr(exc, "status", None) != 404:
                    raise api_error(exc, "patch", "pods", ns, cluster) from exc
        wait_for_key(cluster, ns, [p["metadata"]["name"] for p in pods], keys[0], KEYS_WAIT_S)

    def endpoint(self, handle: Handle) -> Endpoint | None:
        """The Service as this machine reaches it: ingress host, load balancer, node port or a port-forward.

        A port-forward lives as long as this process: its URL stops working when the process exits.
        """
        if handle.get("ingress_host"):
            return Endpoint(f"http://{handle['ingress_host']}")
        cluster = self._cluster(handle)
        if handle.get("service_type") == "LoadBalancer":
            address = load_balancer_address(cluster, handle)
            if address:
                return Endpoint(f"http://{address}")
        if handle.get("service_type") in ("NodePort", "LoadBalancer") and handle.get("node_port"):
            return Endpoint(f"http://{node_address(cluster)}:{handle['node_port']}")
        from nbdeploy.targets.kubernetes.portforward import forwarder

        fwd = forwarder(cluster, handle["namespace"], handle["name"], CONTAINER_PORT)
        return Endpoint(f"http://127.0.0.1:{fwd.port}")
