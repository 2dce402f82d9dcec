"""Pushing what the watcher builds to a real loopback registry: once per build, retried with backoff."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_fault_proxy import FaultProxy
from oci_registry_server import RegistryProcess
from watch_helpers import WatcherFactory, add_model, registry_digest

from ingot.daemon.watch import ReconcileReport, RetrySettings, parse_push_target, read_status
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference
from ingot.registry.store import Store


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    host, port = registry.host.rsplit(":", 1)
    front = FaultProxy(host, int(port))
    yield front
    front.close()


def test_every_tag_is_pushed_once_per_build(
    tree: Path, counting_gguf: Path, store: Store, registry: RegistryProcess, watch: WatcherFactory,
    request: pytest.FixtureRequest,
) -> None:
    namespace = request.node.name.replace("_", "-")[:40]
    add_model(tree, "chat", counting_gguf, "PARAMETER num_predict 4\n")
    (tree / "chat" / "ingot.yaml").write_text("tags: [latest, '1.0']\n")
    target = parse_push_target(f"{registry.host}/{namespace}")
    watcher = watch(tree, push=(target,))
    first = watcher.wait_for(ReconcileReport)
    digest = store.resolve(Reference.parse("chat"))
    assert digest is not None
    assert sorted((p.target, p.result) for p in first.pushes) == [
        (f"{registry.host}/{namespace}/chat:1.0", "pushed"),
        (f"{registry.host}/{namespace}/chat:latest", "pushed"),
    ]
    assert registry_digest(registry.url, f"{namespace}/chat", "latest") == digest.digest
    assert registry_digest(registry.url, f"{namespace}/chat", "1.0") == digest.digest
    watcher.stop()

    again = watch(tree, push=(target,))
    report = again.wait_for(ReconcileReport)
    assert report.built == () and report.pushes == ()


def test_failed_push_is_reported_at_its_declaration_and_retried_with_backoff(
    tree: Path, counting_gguf: Path, home: IngotHome, registry: RegistryProcess, proxy: FaultProxy,
    watch: WatcherFactory,
) -> None:
    add_model(tree, "chat", counting_gguf)
    settings = tree / "chat" / "ingot.yaml"
    settings.write_text(f"name: chat\npush:\n  - {proxy.host}/retry\n")
    proxy.refuse(10_000, status=503)  # the registry is down for maintenance
    watcher = watch(tree, retry=RetrySettings(initial=0.2, max=0.4, attempts=1))
    first = watcher.wait_for(ReconcileReport)
    assert first.built == ("chat/Modelfile",)
    (failure,) = first.pushes
    assert failure.result == "failed" and failure.attempt == 1 and failure.retry_in == pytest.approx(0.2)
    problem = failure.problem
    assert problem is not None and (problem.file, problem.line, problem.column) == (str(settings), 3, 5)
    assert "503" in problem.message

    (status,) = read_status(home, tree)
    record = status.state.models["chat/Modelfile"]
    assert [p.kind for p in record.problems] == ["push"]
    assert status.state.models["chat/Modelfile"].digest is not None  # built and tagged all the same

    second = watcher.wait_for(ReconcileReport, lambda r: bool(r.pushes), after=first.seq)
    assert second.built == ()  # a retry pushes the same build again; it does not rebuild
    assert second.pushes[0].attempt == 2 and second.pushes[0].retry_in == pytest.approx(0.4)

    proxy.clear()  # back up
    recovered = watcher.wait_for(
        ReconcileReport, lambda r: any(p.result == "pushed" for p in r.pushes), after=second.seq
    )
    assert recovered.trigger == "retry"
    digest = watcher.state().models["chat/Modelfile"].digest
    assert registry_digest(registry.url, "retry/chat", "latest") == digest
    (status,) = read_status(home, tree)
    assert status.state.models["chat/Modelfile"].problems == ()
