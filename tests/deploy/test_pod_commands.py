"""A model group's pod, run on the host exactly as deploy/kubernetes and deploy/Containerfile declare it.

No container can start on this machine, so the kubelet's part is played by
`HostPod` (volumes as folders, ports on loopback) and everything inside the
containers is real: the init container's `ingot pull` against a real
`docker-registry` with htpasswd auth, reading the credentials from the
docker-config Secret's file; then the image's entrypoint with the
container's args and environment, on the pulled store made read-only (a
read-only bind mount where root may mount, and an audit hook that refuses
and records every write under it either way); the kubelet's gRPC probes on
the health port; a client through the Service port with TLS and the token;
/metrics as the ServiceMonitor scrapes it; then SIGTERM with a stream in
flight, which must finish within terminationGracePeriodSeconds.
"""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from daemon_helpers import COUNTING, make_package
from deploy_helpers import HostPod, Image, Obj, containerfile, flag, of_kind, one, render
from grpc_health.v1 import health_pb2, health_pb2_grpc
from image_volume import lay_out_image_volume
from oci_registry_server import RegistryProcess, start_registry
from prometheus_client.parser import text_string_to_metric_families
from read_only import made_read_only, write_guard_env
from self_signed import self_signed_certificate
from shared_fixtures import registry_binary

from ingot.cli.client import connect
from ingot.daemon.server import LIVENESS_SERVICE
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2, runtime_pb2
from ingot.registry.home import IngotHome
from ingot.registry.oci import push
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import write_synthetic_gguf

USER, PASSWORD = "ci-bot", "registry-secret"
TOKEN = "cluster-token"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Long enough that SIGTERM lands mid-stream; the final chunk's server-side duration proves it did.
STREAM_TOKENS = 1500


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    server = start_registry(registry_binary(), tmp_path_factory.mktemp("registry-auth"), username=USER, password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _docker_config_json(registry: RegistryProcess) -> bytes:
    """What `kubectl create secret docker-registry` stores under .dockerconfigjson."""
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return json.dumps({"auths": {registry.host: {"username": USER, "password": PASSWORD, "auth": auth}}}).encode()


def _publish(registry: RegistryProcess, docker_config: Path, scratch: Path, repository: str) -> Reference:
    """CI's part: build the counting model's package and push it to the registry with credentials."""
    gguf = write_synthetic_gguf(scratch / "counting.gguf", COUNTING)
    ref = Reference.parse(f"{registry.host}/{repository}")
    make_package(scratch / "home", str(ref), gguf, "PARAMETER temperature 0\n")
    (docker_config / "config.json").write_bytes(_docker_config_json(registry))
    push(Store.open(IngotHome(scratch / "home")), ref)
    return ref


def _secrets(registry: RegistryProcess, tls: tuple[Path, Path]) -> dict[str, dict[str, bytes]]:
    return {
        "ingot-registry": {".dockerconfigjson": _docker_config_json(registry)},
        "ingot-token": {"token": TOKEN.encode()},
        "ingot-tls": {"tls.crt": tls[0].read_bytes(), "tls.key": tls[1].read_bytes()},
    }


def _health(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5, wait_for_ready=True).status


def _wait_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if _health(port, "") == SERVING:
                return
        except grpc.RpcError:
            pass
        assert process.poll() is None, f"ingot serve exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the readiness probe never passed:\n{log.read_text()}"
        time.sleep(0.05)


def _get(port: int, ca: Path, path: str) -> str:
    """GET over HTTPS with the bearer token, as the ServiceMonitor and HTTP clients do."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as reply:
        return reply.read().decode()


def _scrape(port: int, ca: Path) -> str:
    return _get(port, ca, "/metrics")


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family in Prometheus text, by their sorted labels."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert name in families, f"/metrics has no {name}"
    return {tuple(sorted(s.labels.items())): s.value for s in families[name].samples}


class Server:
    """The serve container, started as the kubelet would after the init containers."""

    def __init__(self, host: HostPod, container: Obj, image: Image, *, guarded: Path, folder: Path) -> None:
        self.container = container
        self.host = host
        self.report = folder / "writes.txt"
        self.log = folder / "serve.log"
        env = {**host.env(container, image), **write_guard_env(guarded, self.report)}
        self.env = env
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(host.run_path(env, host.argv(container, image)), env=env,
                                            stdout=out, stderr=subprocess.STDOUT)
        self.probe_port = host.host_port(container["readinessProbe"]["grpc"]["port"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.grpc_port = host.host_port(ports["grpc"])
        self.http_port = host.host_port(ports["http"])

    def client_env(self, ca: Path) -> dict[str, str]:
        """What a client in the cluster sets to reach the ingot-grpc Service."""
        return {"INGOT_HOST": f"127.0.0.1:{self.grpc_port}", "INGOT_TLS_CA": str(ca), "INGOT_TOKEN": TOKEN}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _pod(tree: str, deployment: str | None = None) -> tuple[list[Obj], Obj]:
    objects = render(tree)
    return objects, one(objects, "Deployment", deployment)["spec"]["template"]["spec"]


def test_pull_then_serve_read_only_then_probe_then_drain(
    tmp_path_factory: pytest.TempPathFactory, auth_registry: RegistryProcess, docker_config: Path,
    tls_files: tuple[Path, Path],
) -> None:
    scratch = tmp_path_factory.mktemp("ci")
    published = _publish(auth_registry, docker_config, scratch, "team/llama:1")
    objects, pod = _pod("overlays/cpu")
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    for config_map in config_maps.values():  # the one edit a team makes: its registry in models.txt
        config_map["data"]["pull"] = config_map["data"]["pull"].replace("registry.example.com", auth_registry.host)
    (docker_config / "config.json").unlink()  # from here on only the Secret's file holds credentials
    host = HostPod(pod, tmp_path_factory.mktemp("pod"), config_maps, _secrets(auth_registry, tls_files))
    image = containerfile()

    # 1. The init container: `ingot pull --from-file` with credentials from the mounted Secret.
    (init,) = pod["initContainers"]
    env = host.env(init, image)
    done = subprocess.run(host.run_path(env, host.argv(init, image)), env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # --quiet: one pinned reference per model.
    assert [Reference.parse(line).without_digest() for line in done.stdout.split()] == [published]
    home = Path(env["INGOT_HOME"])
    tags = {t.reference for t in Store.open(IngotHome(home)).list_tags()}
    assert tags == {published, Reference.parse("llama")}

    # 2. The serve container on that store, read-only.
    (serve,) = pod["containers"]
    with made_read_only(home) as how:
        server = Server(host, serve, image, guarded=home, folder=tmp_path_factory.mktemp("serve"))
        try:
            _drain_test(server, serve, pod, tls_files[0])
        finally:
            server.stop()
    assert not server.report.exists(), f"ingot serve wrote to its read-only store (made read-only by {how}):\n" + (
        server.report.read_text())


def _drain_test(server: Server, serve: Obj, pod: Obj, ca: Path) -> None:
    # 3. The kubelet's probes: readiness ("") and liveness on the plaintext health port.
    _wait_serving(server.process, server.probe_port, server.log)
    assert _health(server.probe_port, serve["livenessProbe"]["grpc"]["service"]) == SERVING
    assert serve["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE

    with connect(server.client_env(ca)) as client:
        client.check()
        warm = list(client.inference.Generate(inference_pb2.GenerateRequest(
            model="llama", prompt="the", options=common_pb2.Options(num_predict=2)), timeout=60))
        assert warm[-1].done
        # Writes are refused with a reason, and the daemon keeps serving.
        with pytest.raises(grpc.RpcError) as refused:
            client.models.Delete(models_pb2.DeleteRequest(model="llama"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "read-only" in refused.value.details()
        # The Batch API keeps its state in INGOT_HOME: off in a read-only pod.
        with pytest.raises(urllib.error.HTTPError) as absent:
            _get(server.http_port, ca, "/v1/batches")
        assert absent.value.code == 404
        # The autoscaler's metric, scraped as the ServiceMonitor does, with the model loaded.
        depth = _samples(_scrape(server.http_port, ca), "ingot_queue_depth")
        assert depth[(("model", "llama"), ("priority", "interactive"))] == 0

        # 4. SIGTERM with a stream in flight: it finishes (not cancelled) within the grace period.
        started = time.monotonic()
        stream = client.inference.Generate(inference_pb2.GenerateRequest(
            model="llama", prompt="the", options=common_pb2.Options(num_predict=STREAM_TOKENS)), timeout=120)
        assert not next(stream).done
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # The kubelet stops sending traffic (readiness) but leaves the pod alone (liveness) while it drains.
        deadline = signalled + 10
        while _health(server.probe_port, "") != NOT_SERVING:
            assert time.monotonic() < deadline, "readiness stayed SERVING after SIGTERM"
            time.sleep(0.01)
        unready = time.monotonic()
        assert _health(server.probe_port, LIVENESS_SERVICE) == SERVING
        chunks = list(stream)
    finished = chunks[-1]
    assert finished.done and finished.done_reason == "length" and finished.metrics.eval_count == STREAM_TOKENS
    # The server was still generating when readiness had already dropped (its own clock: total duration),
    # so the stream really was drained, not finished before the signal.
    assert finished.metrics.total_duration_ns / 1e9 > unready - started
    grace = pod["terminationGracePeriodSeconds"] - serve["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert server.process.wait(timeout=grace) == 0
    assert time.monotonic() - signalled < grace
    assert float(flag(serve["args"], "--grace")) < grace


def test_an_image_volume_is_served_in_place_without_an_init_container(
    tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path], counting_store: tuple[Store, Reference],
) -> None:
    objects, pod = _pod("examples/two-groups", "ingot-embed")
    store, ref = counting_store
    volume = next(v for v in pod["volumes"] if "image" in v)
    mounted = tmp_path_factory.mktemp("image-volume") / "embed"
    lay_out_image_volume(store, ref, mounted)  # what CRI-O makes of the package
    host = HostPod(pod, tmp_path_factory.mktemp("pod"), {}, _secrets_without_registry(tls_files),
                   image_volumes={volume["image"]["reference"]: mounted})
    image = containerfile()
    (serve,) = pod["containers"]
    before = {p.name: p.stat().st_ino for p in mounted.iterdir()}
    with made_read_only(mounted):
        server = Server(host, serve, image, guarded=mounted, folder=tmp_path_factory.mktemp("serve"))
        try:
            _wait_serving(server.process, server.probe_port, server.log)
            with connect(server.client_env(tls_files[0])) as client:
                reply = list(client.inference.Generate(inference_pb2.GenerateRequest(
                    model="embed", prompt="the", options=common_pb2.Options(num_predict=3)), timeout=60))
                assert reply[-1].done and reply[-1].metrics.eval_count == 3
                running = client.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=10)
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=pod["terminationGracePeriodSeconds"]) == 0
        finally:
            server.stop()
    assert not server.report.exists(), server.report.read_text()
    assert {p.name: p.stat().st_ino for p in mounted.iterdir()} == before  # served in place, nothing added
    assert [m.name for m in running.models] == ["embed"]


def _secrets_without_registry(tls: tuple[Path, Path]) -> dict[str, dict[str, bytes]]:
    return {"ingot-token": {"token": TOKEN.encode()},
            "ingot-tls": {"tls.crt": tls[0].read_bytes(), "tls.key": tls[1].read_bytes()}}


@pytest.fixture(scope="module")
def counting_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Reference]:
    folder = tmp_path_factory.mktemp("package")
    gguf = write_synthetic_gguf(folder / "counting.gguf", COUNTING)
    make_package(folder / "home", "team/embed:1", gguf, "PARAMETER temperature 0\n")
    return Store.open(IngotHome(folder / "home")), Reference.parse("team/embed:1")
