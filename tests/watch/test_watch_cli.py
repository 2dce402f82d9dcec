"""`ingot watch` as users run it: --once, the config.yaml section, --status, and the long-running mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from oci_registry_server import RegistryProcess
from watch_helpers import add_model, registry_digest

from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference
from ingot.registry.store import Store


def _ingot(*args: str, home: IngotHome) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INGOT_HOME": str(home.root)}
    return subprocess.run([sys.executable, "-m", "ingot.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_once_builds_pushes_and_status_shows_it(
    tree: Path, counting_gguf: Path, home: IngotHome, store: Store, registry: RegistryProcess
) -> None:
    add_model(tree, "chat", counting_gguf, "PARAMETER num_predict 4\n")
    done = _ingot("watch", str(tree), "--once", "--json", "--push", f"{registry.host}/cli", home=home)
    assert done.returncode == 0, done.stderr
    (event,) = [e for e in _events(done.stdout) if e["event"] == "reconcile"]
    digest = store.resolve(Reference.parse("chat")).digest  # type: ignore[union-attr]
    assert [(m["key"], m["action"], m["digest"]) for m in event["models"]] == [("chat/Modelfile", "built", digest)]
    assert [(p["target"], p["result"]) for p in event["pushes"]] == [(f"{registry.host}/cli/chat:latest", "pushed")]
    assert registry_digest(registry.url, "cli/chat", "latest") == digest

    status = _ingot("watch", "--status", "--json", home=home)
    assert status.returncode == 0, status.stderr
    (folder,) = json.loads(status.stdout)
    assert folder["root"] == str(tree) and folder["running"] is False
    model = folder["models"]["chat/Modelfile"]
    assert model["source"] == str(tree / "chat" / "Modelfile")
    assert model["digest"] == digest and model["build"]["result"] == "ok" and model["problems"] == []
    assert model["pushes"][f"{registry.host}/cli/chat:latest"]["digest"] == digest

    text = _ingot("watch", "--status", home=home)
    assert text.returncode == 0
    assert f"chat  {digest.split(':')[1][:12]}  chat/Modelfile" in text.stdout
    assert "not running" in text.stdout


def test_errors_fail_once_and_stay_in_status(tree: Path, counting_gguf: Path, home: IngotHome) -> None:
    modelfile = add_model(tree, "chat", counting_gguf, "PARAMETR num_predict 4\n")
    done = _ingot("watch", str(tree), "--once", home=home)
    assert done.returncode == 1
    assert f"{modelfile}:2:1: unknown instruction 'PARAMETR'" in done.stdout
    status = _ingot("watch", "--status", str(tree), home=home)
    assert f"error: {modelfile}:2:1: unknown instruction 'PARAMETR'" in status.stdout


def test_config_yaml_watch_section_runs_the_same_watcher(tree: Path, counting_gguf: Path, home: IngotHome) -> None:
    add_model(tree, "chat", counting_gguf)
    config = home.path("config.yaml")
    config.write_text(f"watch:\n  dir: {tree}\n  reload: false\n")
    done = _ingot("watch", "--once", "--json", home=home)
    assert done.returncode == 0, done.stderr
    assert _events(done.stdout)[0]["models"][0]["action"] == "built"

    config.write_text(f"watch:\n  dir: {tree}\n  pruen: true\n")
    bad = _ingot("watch", "--once", home=home)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"error: {config}:3:3: watch: unknown key 'pruen'; did you mean 'prune'?"
    )


def _next_build(stream: IO[str]) -> dict[str, Any]:
    """The next pass that built something (passes that found nothing to do are skipped)."""
    for line in stream:
        data = json.loads(line)
        if data["event"] == "reconcile" and any(m["action"] == "built" for m in data["models"]):
            return data
    raise AssertionError("the watcher ended before building")


def test_foreground_watcher_follows_edits_and_stops_on_sigterm(
    tree: Path, counting_gguf: Path, home: IngotHome
) -> None:
    modelfile = add_model(tree, "chat", counting_gguf)
    env = {**os.environ, "INGOT_HOME": str(home.root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingot.cli.main", "watch", str(tree), "--json", "--debounce", "200ms"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        first = _next_build(process.stdout)
        assert first["trigger"] == "startup"
        modelfile.write_text("FROM ./model.gguf\nSYSTEM be brief\n")
        second = _next_build(process.stdout)
        assert second["trigger"] == "events" and "chat/Modelfile" in second["changed_paths"]
        assert second["models"][0]["previous_digest"] == first["models"][0]["digest"]
        running = _ingot("watch", "--status", "--json", home=home)
        assert json.loads(running.stdout)[0]["running"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
