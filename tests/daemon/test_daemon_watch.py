"""A `watch:` section in config.yaml runs the GitOps watcher inside `ingot serve`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from daemon_helpers import COUNTING, DaemonProcess, expected_text, wait_until

from ingot.proto.ingot.v1 import models_pb2, runtime_pb2


def _names(daemon: DaemonProcess) -> set[str]:
    return {m.name for m in daemon.models.List(models_pb2.ListRequest(), timeout=10).models}


def test_daemon_builds_and_serves_models_declared_in_its_watch_folder(
    tmp_path_factory, counting_gguf: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    home = tmp_path_factory.mktemp("watchhome")
    models = tmp_path_factory.mktemp("gitops")
    (models / "greeter").mkdir()
    shutil.copy(counting_gguf, models / "greeter" / "weights.gguf")
    (models / "greeter" / "Modelfile").write_text("FROM ./weights.gguf\nPARAMETER temperature 0\n")
    (home / "config.yaml").write_text(f"watch:\n  dir: {models}\n  copy: true\n")

    daemon = start_daemon(home)
    wait_until(lambda: any("greeter" in name for name in _names(daemon)), timeout=60, what="the watcher's build")

    last = daemon.last_token("greeter", "hello")
    text, final = daemon.generate("greeter", "hello", num_predict=4)
    assert text == expected_text(COUNTING, last, 4)
    assert final.done_reason == "length"

    # The watcher's status over gRPC: the folder, its model, the build that serves.
    status = daemon.runtime.WatchStatus(runtime_pb2.WatchStatusRequest(), timeout=10)
    [folder] = status.folders
    assert folder.root == str(models) and folder.running and folder.in_daemon
    [model] = folder.models
    served = daemon.models.Show(models_pb2.ShowRequest(model="greeter"), timeout=10)
    assert (model.key, model.source, model.last_build_result) == (
        "greeter/Modelfile", str(models / "greeter" / "Modelfile"), "ok"
    )
    assert [ref.rsplit("/", 1)[-1] for ref in model.references] == ["greeter:latest"]
    assert model.digest == served.digest and not model.problems

    # A broken edit shows up there with its place, while the last good build keeps serving.
    (models / "greeter" / "Modelfile").write_text("FROM ./weights.gguf\nPARAMETER temperature hot\n")

    def standing_problem() -> runtime_pb2.WatchProblem | None:
        [folder] = daemon.runtime.WatchStatus(runtime_pb2.WatchStatusRequest(root=str(models)), timeout=10).folders
        return folder.models[0].problems[0] if folder.models[0].problems else None

    problem = wait_until(standing_problem, timeout=60, what="the broken Modelfile in WatchStatus")
    assert problem.file.endswith("greeter/Modelfile") and (problem.line, problem.kind) == (2, "modelfile")
    text, _ = daemon.generate("greeter", "hello", num_predict=4)
    assert text == expected_text(COUNTING, last, 4)


def test_a_broken_config_file_stops_the_daemon_with_its_location(
    tmp_path_factory, start_daemon: Callable[..., DaemonProcess]
) -> None:
    home = tmp_path_factory.mktemp("badconfig")
    (home / "config.yaml").write_text("watch:\n  dir: /nonexistent\n  pruen: true\n")
    daemon = start_daemon(home, wait=False)
    assert daemon.process.wait(timeout=60) != 0
    assert "config.yaml:3:3" in daemon.log()
