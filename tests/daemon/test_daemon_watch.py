"""A `watch:` section in config.yaml runs the GitOps watcher inside `ingot serve`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from daemon_helpers import COUNTING, DaemonProcess, expected_text, wait_until

from ingot.proto.ingot.v1 import models_pb2


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


def test_a_broken_config_file_stops_the_daemon_with_its_location(
    tmp_path_factory, start_daemon: Callable[..., DaemonProcess]
) -> None:
    home = tmp_path_factory.mktemp("badconfig")
    (home / "config.yaml").write_text("watch:\n  dir: /nonexistent\n  pruen: true\n")
    daemon = start_daemon(home, wait=False)
    assert daemon.process.wait(timeout=60) != 0
    assert "config.yaml:3:3" in daemon.log()
