"""deploy/kubernetes: every tree renders, every object validates against Kubernetes' schemas, and the parts agree.

Agreement is checked against the code, not against the YAML itself: the probe
service names and the shutdown margin come from ingot.daemon.server, the
environment variables from the names `ingot serve` reads, the init command
from `ingot pull`'s own parser, the models list from its own file reader.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import KUBE, REPO, TREES, Obj, containerfile, flag, of_kind, one, render

from ingot.cli.cmd_pull import read_entries
from ingot.cli.main import build_parser
from ingot.daemon.address import SOCKET_ENV
from ingot.daemon.constants import SERVE_ENV, TOKEN_ENV
from ingot.daemon.engine.types import Priority
from ingot.daemon.server import LIVENESS_SERVICE, SHUTDOWN_MARGIN_S
from ingot.registry.mounted import parse_model_dir
from ingot.registry.reference import Reference

# The release image volumes are on by default in, and the newest schemas kubernetes-validate ships.
VERSIONS = ("1.35.0", kubernetes_validate.latest_version())
# Kinds of CRDs (no schema offline): checked field by field below instead.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
IMAGE_BACKENDS = {"cpu": "cpu", "nvidia": "cuda", "amd": "rocm"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {tree: render(tree) for tree in TREES}


def _deployments(rendered: dict[str, list[Obj]]) -> list[tuple[str, Obj]]:
    return [(tree, d) for tree, objects in rendered.items() for d in of_kind(objects, "Deployment")]


def _container(pod: Obj, name: str, *, init: bool = False) -> Obj:
    key = "initContainers" if init else "containers"
    return next(c for c in pod.get(key) or [] if c["name"] == name)


def _env(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tree", TREES)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[Obj]], tree: str, version: str
) -> None:
    objects = rendered[tree]
    assert objects
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        # strict: an unknown or misspelt field is an error, not silently dropped by the API server.
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validation_would_catch_a_mistake(rendered: dict[str, list[Obj]]) -> None:
    deployment = copy.deepcopy(one(rendered["overlays/cpu"], "Deployment"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 50  # the field is ...Seconds
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    deployment = copy.deepcopy(one(rendered["overlays/cpu"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "health"
    with pytest.raises(kubernetes_validate.ValidationError):  # gRPC probes take a number, not a port name
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_listeners_ports_and_probes_agree_with_ingot_serve(rendered: dict[str, list[Obj]]) -> None:
    image = containerfile()
    known = {*SERVE_ENV.values(), SOCKET_ENV, TOKEN_ENV, "INGOT_HOME"}
    for tree, deployment in _deployments(rendered):
        serve = _container(deployment["spec"]["template"]["spec"], "ingot")
        env = _env(serve)
        unknown = {name for name in env if name.startswith("INGOT_")} - known
        assert not unknown, f"{tree}: ingot serve reads no {unknown}"
        ports = {p["name"]: p["containerPort"] for p in serve["ports"]}
        listen = {name: int(env[SERVE_ENV[name]].rsplit(":", 1)[1]) for name in ("listen", "http", "health")}
        assert listen == {"listen": ports["grpc"], "http": ports["http"], "health": ports["health"]}, tree
        assert set(image.exposed) == set(ports.values()), f"{tree}: the Containerfile EXPOSEs {image.exposed}"
        readiness, liveness, startup = (serve[k]["grpc"] for k in ("readinessProbe", "livenessProbe", "startupProbe"))
        assert {readiness["port"], liveness["port"], startup["port"]} == {ports["health"]}
        # "" (readiness) turns NOT_SERVING when shutdown starts; LIVENESS_SERVICE holds while streams drain.
        assert readiness.get("service", "") == ""
        assert liveness["service"] == startup["service"] == LIVENESS_SERVICE
        assert env[TOKEN_ENV]["secretKeyRef"]["name"] == "ingot-token"
        for service in of_kind(rendered[tree], "Service"):
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, f"{tree}: {service['metadata']['name']} targets {port['targetPort']}"


def test_termination_grace_covers_the_pre_stop_pause_the_drain_and_the_margin(rendered: dict[str, list[Obj]]) -> None:
    for tree, deployment in _deployments(rendered):
        pod = deployment["spec"]["template"]["spec"]
        serve = _container(pod, "ingot")
        grace = float(flag(serve["args"], "--grace"))
        pause = serve["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] >= pause + grace + SHUTDOWN_MARGIN_S, tree


def test_the_image_and_the_pods_run_as_the_same_non_root_user(rendered: dict[str, list[Obj]]) -> None:
    uid, _, gid = containerfile().user.partition(":")
    for tree, deployment in _deployments(rendered):
        security = deployment["spec"]["template"]["spec"]["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (str(security["runAsUser"]), str(security["runAsGroup"])) == (uid, gid), tree
        assert int(uid) != 0


@pytest.mark.parametrize("hardware", ["cpu", "nvidia", "amd"])
def test_each_overlay_asks_for_its_hardware_and_image(rendered: dict[str, list[Obj]], hardware: str) -> None:
    deployment = one(rendered[f"overlays/{hardware}"], "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    serve = _container(pod, "ingot")
    limits = serve["resources"]["limits"]
    for vendor, resource in GPU_RESOURCES.items():
        assert (resource in limits) == (vendor == hardware)
    if hardware in GPU_RESOURCES:
        assert int(limits[GPU_RESOURCES[hardware]]) >= 1
        assert pod["nodeSelector"] and any(t["key"] == GPU_RESOURCES[hardware] for t in pod["tolerations"])
    # The image tag names the backend it was built for; scripts/install-engine must know it.
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        tag = container["image"].rsplit(":", 1)[1]
        assert tag.rsplit("-", 1)[1] == IMAGE_BACKENDS[hardware]
    done = subprocess.run([str(REPO / "scripts/install-engine"), "--print", IMAGE_BACKENDS[hardware]],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_init_container_pulls_the_models_list_into_the_store_the_server_reads_only(
    rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    for tree, deployment in _deployments(rendered):
        pod = deployment["spec"]["template"]["spec"]
        if not pod.get("initContainers"):
            continue
        pull = _container(pod, "pull", init=True)
        serve = _container(pod, "ingot")
        assert pull["command"][:2] == ["ingot", "pull"]
        args = build_parser().parse_args(pull["command"][1:])  # ingot's own parser accepts it
        mounts = {m["mountPath"]: m for m in pull["volumeMounts"]}
        models_mount = str(Path(args.from_file).parent)
        models_volume = next(v for v in pod["volumes"] if v["name"] == mounts[models_mount]["name"])
        config_map = one(rendered[tree], "ConfigMap", models_volume["configMap"]["name"])
        listed = tmp_path / "pull"
        listed.write_text(config_map["data"][Path(args.from_file).name])
        entries = read_entries(listed)
        assert entries and all(e.alias is not None for e in entries), tree
        home = _env(pull)["INGOT_HOME"]
        assert _env(serve)["INGOT_HOME"] == home
        assert not mounts[home].get("readOnly")
        serve_mounts = {m["mountPath"]: m for m in serve["volumeMounts"]}
        assert serve_mounts[home]["readOnly"] is True and serve_mounts[home]["name"] == mounts[home]["name"]
        assert _env(serve)[SERVE_ENV["read_only"]] == "1"
        # Docker's config.json, from a kubernetes.io/dockerconfigjson Secret.
        credentials = next(v for v in pod["volumes"] if v["name"] == mounts[_env(pull)["DOCKER_CONFIG"]]["name"])
        assert credentials["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
        # The socket is outside the read-only home.
        socket = _env(serve)[SOCKET_ENV]
        assert not socket.startswith(home + "/")
        assert any(socket.startswith(path + "/") for path in serve_mounts if not serve_mounts[path].get("readOnly"))


def test_an_image_volume_group_serves_each_mount_read_only(rendered: dict[str, list[Obj]]) -> None:
    deployment = one(rendered["examples/two-groups"], "Deployment", "ingot-embed")
    pod = deployment["spec"]["template"]["spec"]
    assert not pod.get("initContainers")
    serve = _container(pod, "ingot")
    images = {v["name"]: v["image"] for v in pod["volumes"] if "image" in v}
    mounts = {m["mountPath"]: m for m in serve["volumeMounts"]}
    model_dirs = [parse_model_dir(entry) for entry in _env(serve)[SERVE_ENV["model_dir"]].split()]
    assert model_dirs
    for model_dir in model_dirs:
        mount = mounts[str(model_dir.path)]
        assert mount["readOnly"] is True and mount["name"] in images
        reference = Reference.parse(images[mount["name"]]["reference"])
        assert reference.digest is not None, "CI pins image volumes by digest"
    assert pod["imagePullSecrets"] == [{"name": "ingot-registry"}]
    assert not [c for c in of_kind(rendered["examples/two-groups"], "ConfigMap") if "embed" in c["metadata"]["name"]]


def test_services_budgets_and_autoscalers_select_their_own_group(rendered: dict[str, list[Obj]]) -> None:
    for tree, objects in rendered.items():
        for deployment in of_kind(objects, "Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
            others = [d for d in of_kind(objects, "Deployment") if d is not deployment]
            name = deployment["metadata"]["name"]
            mine = [s for s in of_kind(objects, "Service") if s["spec"]["selector"].items() <= labels.items()]
            assert {s["metadata"]["name"].replace(name.replace("ingot", "", 1), "") for s in mine} == {
                "ingot-grpc", "ingot-grpc-headless", "ingot-http"}, tree
            for other in others:  # no Service of this group also selects another group's pods
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not any(s["spec"]["selector"].items() <= other_labels.items() for s in mine)
            pdb = next(p for p in of_kind(objects, "PodDisruptionBudget")
                       if p["spec"]["selector"]["matchLabels"].items() <= labels.items())
            assert pdb["spec"]["maxUnavailable"] == 1
            hpa = next(h for h in of_kind(objects, "HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == name)
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_the_autoscaler_metric_is_the_one_prometheus_adapter_serves(rendered: dict[str, list[Obj]]) -> None:
    adapter = yaml.safe_load((KUBE / "prometheus-adapter/values.yaml").read_text())
    served = {}
    for rule in adapter["rules"]["custom"]:
        series = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", rule["seriesQuery"]).group(1)
        assert re.fullmatch(rule["name"]["matches"], series)
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
        served[rule["name"]["as"]] = series
    for tree, objects in rendered.items():
        for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
            for metric in hpa["spec"]["metrics"]:
                assert metric["type"] == "Pods"
                assert served.get(metric["pods"]["metric"]["name"]) == "ingot_queue_depth", tree
    # Only interactive requests call for another pod; the label value is one the daemon uses.
    for rule in adapter["rules"]["custom"]:
        (priority,) = re.findall(r'priority="(\w+)"', rule["metricsQuery"])
        assert Priority(priority) is Priority.INTERACTIVE
    # The end-to-end test (test_pod_commands.py) scrapes ingot_queue_depth from a live daemon.


def test_one_service_monitor_scrapes_every_group_with_the_clients_token(rendered: dict[str, list[Obj]]) -> None:
    for tree, objects in rendered.items():
        monitor = one(objects, "ServiceMonitor")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        scraped = [s for s in of_kind(objects, "Service") if selector.items() <= s["metadata"].get("labels", {}).items()]
        assert {s["metadata"]["name"] for s in scraped} == {
            s["metadata"]["name"] for s in of_kind(objects, "Service") if s["metadata"]["name"].startswith("ingot-http")
        }, tree
        (endpoint,) = monitor["spec"]["endpoints"]
        assert all(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in scraped)
        assert (endpoint["path"], endpoint["scheme"]) == ("/metrics", "https")
        assert endpoint["authorization"]["credentials"] == {"name": "ingot-token", "key": "token"}


def test_flux_and_argo_cd_follow_the_deploy_bundle() -> None:
    flux = list(yaml.safe_load_all((KUBE / "gitops/flux/ingot.yaml").read_text()))
    source = next(o for o in flux if o["kind"] == "OCIRepository")
    kustomization = next(o for o in flux if o["kind"] == "Kustomization")
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert source["spec"]["url"].startswith("oci://") and source["spec"]["ref"]["semver"]
    assert kustomization["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": source["metadata"]["name"]}
    assert kustomization["metadata"]["namespace"] == source["metadata"]["namespace"]
    assert kustomization["spec"]["prune"] is True and kustomization["spec"]["wait"] is True
    (argo,) = yaml.safe_load_all((KUBE / "gitops/argocd/ingot.yaml").read_text())
    assert (argo["apiVersion"], argo["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert argo["spec"]["source"]["repoURL"] == source["spec"]["url"]
    assert argo["spec"]["destination"]["namespace"] == kustomization["spec"]["targetNamespace"]
    # The bundle's one layer is tar+gzip, which Flux extracts and Argo CD reads.
    assert source["spec"]["layerSelector"]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
