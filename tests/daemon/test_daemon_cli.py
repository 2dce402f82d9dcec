"""`ingot run` (one-shot and the REPL through a pseudo-terminal), `ingot ps`, `ingot stop`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pexpect
import pytest
import requests
from daemon_helpers import COUNTING, OTHER, DaemonProcess, expected_text, make_package, wait_until

from ingot.proto.ingot.v1 import models_pb2, runtime_pb2
from ingot.registry.home import IngotHome
from ingot.registry.oci import push
from ingot.registry.store import Store


def _ingot(daemon: DaemonProcess | None, *args: str, stdin: str | None = None, home: Path | None = None,
           ) -> subprocess.CompletedProcess[str]:
    env = daemon.env() if daemon is not None else {**os.environ, "INGOT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", *args],
        env=env, input=stdin if stdin is not None else "", capture_output=True, text=True, timeout=120,
    )


# Every message rendered after a space: the prompt always ends with the last message's own tokens.
CHAT_TEMPLATE = 'TEMPLATE """{{ range .Messages }} {{ .Content }}{{ end }}"""\n'


@pytest.fixture(scope="module")
def cli_daemon(daemon: DaemonProcess, counting_gguf: Path) -> DaemonProcess:
    make_package(daemon.home, "short", counting_gguf, "PARAMETER temperature 0\nPARAMETER num_predict 8\n")
    make_package(daemon.home, "chatty", counting_gguf,
                 f"{CHAT_TEMPLATE}PARAMETER temperature 0\nPARAMETER num_predict 8\n")
    return daemon


def test_run_with_a_prompt_answers_once(cli_daemon: DaemonProcess) -> None:
    last = cli_daemon.last_token("short", "the")
    result = _ingot(cli_daemon, "run", "short", "the", "--verbose")
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text(COUNTING, last, 8) + "\n"
    assert "eval rate:" in result.stderr and "time to first token:" in result.stderr


def test_run_reads_piped_stdin(cli_daemon: DaemonProcess) -> None:
    last = cli_daemon.last_token("short", "the\nof\n")  # sent as is, final newline included
    result = _ingot(cli_daemon, "run", "short", stdin="the\nof\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text(COUNTING, last, 8) + "\n"


def test_run_without_a_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    result = _ingot(None, "run", "short", "hello", home=tmp_path)
    assert result.returncode == 1
    assert "ingot serve" in result.stderr and "Traceback" not in result.stderr


def test_run_on_a_missing_model_is_one_error_line(cli_daemon: DaemonProcess) -> None:
    result = _ingot(cli_daemon, "run", "no-such-model", "hello")
    assert result.returncode == 1
    assert result.stderr.startswith("error: model 'no-such-model' not found")
    assert len(result.stderr.strip().splitlines()) == 1


def test_ps_and_stop(cli_daemon: DaemonProcess) -> None:
    cli_daemon.generate("short", "the")
    listed = _ingot(cli_daemon, "ps", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["short"]["processor"] == "100% CPU" and rows["short"]["state"] == "ready"
    assert rows["short"]["pid"] > 0
    # The generation above is within the last minute; nothing waits; all memory is host RAM.
    assert rows["short"]["tokens_per_second"] > 0
    assert rows["short"]["queued"] == {"interactive": 0, "batch": 0}
    assert [d["device"] for d in rows["short"]["devices"]] == ["cpu"]
    assert rows["short"]["devices"][0]["bytes"] == rows["short"]["size_bytes"]

    table = _ingot(cli_daemon, "ps")
    header, line = table.stdout.splitlines()[:2]
    assert header.split() == [
        "NAME", "ID", "SIZE", "PROCESSOR", "DEVICES", "CONTEXT", "ACTIVE", "QUEUED", "TOKENS/S", "UNTIL"
    ]
    assert "cpu 100%" in line

    stopped = _ingot(cli_daemon, "stop", "short")
    assert stopped.returncode == 0, stopped.stderr
    assert cli_daemon.running_model("short") is None
    again = _ingot(cli_daemon, "stop", "short")
    assert again.returncode == 1 and "not loaded" in again.stderr


def test_repl_session(cli_daemon: DaemonProcess) -> None:
    daemon = cli_daemon
    child = pexpect.spawn(
        sys.executable, ["-m", "ingot.cli.main", "run", "chatty"], env=daemon.env(), encoding="utf-8", timeout=60,
        dimensions=(40, 400),
    )
    try:
        child.expect_exact(">>> ")
        child.sendline("the")
        child.expect_exact(expected_text(COUNTING, daemon.last_token("chatty", " the"), 8))
        child.expect_exact(">>> ")

        child.sendline("/set parameter num_predict 3")
        child.expect_exact("Set parameter 'num_predict' to '3'")
        child.sendline("/set parameter top_p 7")
        child.expect_exact("error: parameter 'top_p' must be between 0.0 and 1.0")
        child.sendline("/show parameters")
        child.expect(r"num_predict\s+3")

        child.sendline('"""')
        child.expect_exact("... ")
        child.sendline("of")
        child.sendline('and"""')
        child.expect_exact(expected_text(COUNTING, daemon.last_token("chatty", " of\nand"), 3))
        child.expect_exact(">>> ")

        child.sendline("/set system the")
        child.expect_exact("Set system message.")
        child.sendline("/show system")
        child.expect_exact("the\r\n")

        # Ctrl-C stops a long reply, not the session.
        child.sendline("/set parameter num_predict -1")
        child.sendline("/set parameter num_ctx 16384")
        child.expect_exact("Set parameter 'num_ctx' to '16384'")
        child.sendline("was")
        child.expect_exact(expected_text(COUNTING, daemon.last_token("chatty", " was"), 3))
        child.sendintr()
        child.expect_exact(">>> ")
        wait_until(lambda: daemon.active("chatty") == 0, what="the interrupted reply to be released")
        child.sendline("/set parameter num_predict 3")
        child.sendline("of")
        child.expect_exact(expected_text(COUNTING, daemon.last_token("chatty", " of"), 3))

        child.sendline("/save saved-session")
        child.expect_exact("Created new model 'saved-session'")
        saved = daemon.models.Show(models_pb2.ShowRequest(model="saved-session"), timeout=10)
        assert saved.system == "the" and saved.parameters.num_predict == 3
        assert [m.role for m in saved.messages][-2:] == ["user", "assistant"]

        child.sendline("/clear")
        child.expect_exact("Cleared session context")
        child.sendline("/load other")
        child.expect_exact("Loading model 'other'")
        child.expect_exact(">>> ")
        child.sendline("the")
        child.expect_exact(expected_text(OTHER, daemon.last_token("short", "the"), 4))  # other's own num_predict is unset
        child.sendintr()
        child.expect_exact(">>> ")
        child.sendline("/nonsense")
        child.expect_exact("Unknown command '/nonsense'")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert daemon.running_model("other") is not None
    assert daemon.runtime.ListRunning(runtime_pb2.ListRunningRequest(), timeout=10).models


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    """A CNCF distribution registry on a free loopback port; yields its host:port."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        pytest.skip("docker-registry is not installed (scripts/setup --test installs it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'storage'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(port) or process.poll() is not None, what="the registry to start")
        assert process.poll() is None, "docker-registry exited at start"
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def test_run_pulls_a_model_that_names_a_registry_first(cli_daemon: DaemonProcess, local_registry: str) -> None:
    remote = f"{local_registry}/team/short:1"
    push(Store.open(IngotHome(cli_daemon.home)), "short", destination=remote)
    assert remote not in [m.name for m in cli_daemon.models.List(models_pb2.ListRequest(), timeout=10).models]
    last = cli_daemon.last_token("short", "the")
    result = _ingot(cli_daemon, "run", remote, "the")
    assert result.returncode == 0, result.stderr
    assert f"pulling {remote}" in result.stderr
    assert result.stdout == expected_text(COUNTING, last, 8) + "\n"
    assert remote in [m.name for m in cli_daemon.models.List(models_pb2.ListRequest(), timeout=10).models]


def test_push_and_pull_rpcs_stream_progress(cli_daemon: DaemonProcess, local_registry: str) -> None:
    remote = f"{local_registry}/team/pushed:2"
    cli_daemon.models.Copy(models_pb2.CopyRequest(source="short", destination=remote), timeout=10)
    events = list(cli_daemon.models.Push(models_pb2.PushRequest(model=remote), timeout=60))
    assert events[-1].status == "success"
    assert any(e.digest and e.total > 0 for e in events)  # per-blob progress came through
    cli_daemon.models.Delete(models_pb2.DeleteRequest(model=remote), timeout=10)
    events = list(cli_daemon.models.Pull(models_pb2.PullRequest(model=remote), timeout=60))
    assert events[-1].status == "success"
    shown = cli_daemon.models.Show(models_pb2.ShowRequest(model=remote), timeout=10)
    assert shown.digest == cli_daemon.models.Show(models_pb2.ShowRequest(model="short"), timeout=10).digest

    missing = f"{local_registry}/team/absent:1"
    with pytest.raises(grpc.RpcError) as failed:
        list(cli_daemon.models.Pull(models_pb2.PullRequest(model=missing), timeout=60))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
