"""End to end: a folder of Modelfiles, the watcher, a real loopback registry and a real daemon.

The scenario follows one model through its life: it appears (built, pushed,
served); its PARAMETER is edited while a stream on the old build is in flight
(the stream finishes on the old build, new requests get the new one, nothing
fails); its syntax breaks (error in status, old build still served) and is
fixed (recovers); and a restarted watcher finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from daemon_helpers import COUNTING, DaemonProcess, expected_text
from oci_registry_server import RegistryProcess
from watch_helpers import WatcherFactory, add_model, registry_digest

from ingot.daemon.watch import DaemonReloader, ReconcileReport, ReloadReport, parse_push_target, read_status
from ingot.proto.ingot.v1 import inference_pb2, inference_pb2_grpc
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference
from ingot.registry.store import Store

LONG = 1500  # tokens of the first build's replies: a stream that lasts
SHORT = 3


@pytest.fixture
def slow_reader(home: IngotHome) -> Iterator[inference_pb2_grpc.InferenceStub]:
    """A client whose HTTP/2 window is tiny: a stream it stops reading stays in flight on the daemon.

    The daemon holds a request's runner until the last chunk is sent, so this
    keeps "a stream started before the edit" running for as long as the test
    wants, with no timing involved.
    """
    channel = grpc.insecure_channel(
        f"unix:{home.root / 'ingot.sock'}",
        options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)],
    )
    yield inference_pb2_grpc.InferenceStub(channel)
    channel.close()


def _modelfile(num_predict: int, extra: str = "") -> str:
    return f"FROM ./model.gguf\nPARAMETER temperature 0\nPARAMETER num_predict {num_predict}\n{extra}"


def _tagged(store: Store) -> str:
    descriptor = store.resolve(Reference.parse("chat"))
    assert descriptor is not None
    return descriptor.digest


def test_a_model_appears_changes_breaks_recovers_and_restarts_idle(
    tree: Path,
    counting_gguf: Path,
    home: IngotHome,
    store: Store,
    registry: RegistryProcess,
    daemon: DaemonProcess,
    slow_reader: inference_pb2_grpc.InferenceStub,
    watch: WatcherFactory,
) -> None:
    target = parse_push_target(f"{registry.host}/live")
    reloader = DaemonReloader.from_env(home, {})

    # 1. A new Modelfile: the model is built, pushed and served.
    modelfile = add_model(tree, "chat", counting_gguf)
    modelfile.write_text(_modelfile(LONG))
    watcher = watch(tree, push=(target,), reloader=reloader)
    first = watcher.wait_for(ReconcileReport)
    v1 = _tagged(store)
    assert first.built == ("chat/Modelfile",) and first.outcome("chat/Modelfile").digest == v1  # type: ignore[union-attr]
    assert [(p.target, p.result) for p in first.pushes] == [(f"{registry.host}/live/chat:latest", "pushed")]
    assert registry_digest(registry.url, "live/chat", "latest") == v1
    assert watcher.wait_for(ReloadReport).result == "not-loaded"  # nothing to swap yet
    last = daemon.last_token("chat", "the")
    text, _ = daemon.generate("chat", "the", num_predict=5)
    assert text == expected_text(COUNTING, last, 5)

    # 2. A stream on v1 starts, then PARAMETER num_predict is edited.
    stream = slow_reader.Generate(inference_pb2.GenerateRequest(model="chat", prompt="the"), timeout=120)
    head = next(stream)
    assert daemon.running_model("chat").digest == v1  # type: ignore[union-attr]
    modelfile.write_text(_modelfile(SHORT))
    rebuilt = watcher.wait_for(ReconcileReport, lambda r: bool(r.built), after=first.seq)
    v2 = _tagged(store)
    assert v2 != v1 and rebuilt.outcome("chat/Modelfile").digest == v2  # type: ignore[union-attr]
    assert [(p.result, p.digest) for p in rebuilt.pushes] == [("pushed", v2)]
    assert registry_digest(registry.url, "live/chat", "latest") == v2
    running = daemon.running_model("chat")
    assert running is not None and running.digest == v1 and running.active_requests >= 1  # still streaming v1

    with ThreadPoolExecutor(1) as pool:
        after_edit = pool.submit(daemon.generate, "chat", "the")  # asked for after the new tag
        rest = "".join(chunk.response for chunk in stream)  # now let the v1 stream run to its end
        new_text, new_final = after_edit.result(timeout=120)
    assert head.response + rest == expected_text(COUNTING, last, LONG)  # finished on v1, undisturbed
    assert new_text == expected_text(COUNTING, last, SHORT) and new_final.done_reason == "length"
    swap = watcher.wait_for(ReloadReport, lambda r: r.digest == v2)
    assert swap.result == "swapped" and swap.problem is None
    assert daemon.running_model("chat").digest == v2  # type: ignore[union-attr]

    # 3. Broken syntax: the error is in the status, v2 stays tagged, pushed and served.
    modelfile.write_text(_modelfile(SHORT, "PARAMETER num_predict\n"))
    broken = watcher.wait_for(ReconcileReport, lambda r: bool(r.failed), after=rebuilt.seq)
    problem = broken.outcome("chat/Modelfile").problem  # type: ignore[union-attr]
    assert problem is not None and (problem.file, problem.line) == (str(modelfile), 4)
    (status,) = read_status(home, tree)
    record = status.state.models["chat/Modelfile"]
    assert record.digest == v2 and [p.kind for p in record.problems] == ["modelfile"]
    assert _tagged(store) == v2 and registry_digest(registry.url, "live/chat", "latest") == v2
    text, _ = daemon.generate("chat", "the")
    assert text == expected_text(COUNTING, last, SHORT)

    # 4. Fixed: built, pushed, swapped in; the status is clean again.
    modelfile.write_text(_modelfile(SHORT + 1))
    fixed = watcher.wait_for(ReconcileReport, lambda r: bool(r.built), after=broken.seq)
    v3 = _tagged(store)
    assert fixed.failed == () and v3 not in (v1, v2)
    assert registry_digest(registry.url, "live/chat", "latest") == v3
    assert watcher.wait_for(ReloadReport, lambda r: r.digest == v3).result == "swapped"
    assert daemon.running_model("chat").digest == v3  # type: ignore[union-attr]  # swapped in before any request
    text, _ = daemon.generate("chat", "the")
    assert text == expected_text(COUNTING, last, SHORT + 1)
    (status,) = read_status(home, tree)
    assert status.state.models["chat/Modelfile"].problems == ()
    watcher.stop()

    # 5. A restart on the unchanged tree builds nothing, pushes nothing, swaps nothing.
    restarted = watch(tree, push=(target,), reloader=reloader)
    idle = restarted.wait_for(ReconcileReport)
    assert idle.built == () and idle.pushes == () and idle.failed == ()
    assert [m.action for m in idle.models] == ["unchanged"]
    assert not any(isinstance(e, ReloadReport) for e in restarted.events)
    assert daemon.running_model("chat").digest == v3  # type: ignore[union-attr]
