"""`ingot serve` options from flags or from the environment (a container's entrypoint), flags winning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.cli.cmd_serve import _config
from ingot.cli.main import build_parser
from ingot.daemon.address import SOCKET_ENV, Address, client_address
from ingot.daemon.constants import SERVE_ENV
from ingot.registry.reference import Reference


def _serve_config(monkeypatch: pytest.MonkeyPatch, home: Path, env: dict[str, str], *argv: str):
    monkeypatch.setenv("INGOT_HOME", str(home))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return _config(build_parser().parse_args(["serve", *argv]))


def test_listeners_tls_token_and_model_dirs_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    env = {
        SOCKET_ENV: str(tmp_path / "run" / "ingot.sock"),
        SERVE_ENV["listen"]: "0.0.0.0:7733",
        SERVE_ENV["http"]: "0.0.0.0:11435",
        SERVE_ENV["health"]: "0.0.0.0:7734",
        SERVE_ENV["tls_cert"]: "/certs/tls.crt",
        SERVE_ENV["tls_key"]: "/certs/tls.key",
        SERVE_ENV["token_file"]: str(tmp_path / "token"),
        SERVE_ENV["model_dir"]: "chat=/models/chat\n  /models/embed",
        SERVE_ENV["read_only"]: "1",
    }
    config = _serve_config(monkeypatch, tmp_path, env)
    assert config.socket_path == tmp_path / "run" / "ingot.sock"
    assert (config.listen, config.http, config.health) == (
        Address(host="0.0.0.0", port=7733), Address(host="0.0.0.0", port=11435), Address(host="0.0.0.0", port=7734))
    assert config.tls is not None and (config.tls.cert, config.tls.key) == (Path("/certs/tls.crt"), Path("/certs/tls.key"))
    assert config.token == "from-a-file"
    assert [(d.name, d.path) for d in config.model_dirs] == [
        (Reference.parse("chat"), Path("/models/chat")), (Reference.parse("embed"), Path("/models/embed"))]
    assert config.read_only is True
    # The CLI in the same container finds the daemon through the same variable.
    assert client_address(tmp_path, {SOCKET_ENV: env[SOCKET_ENV]}) == Address(unix_path=tmp_path / "run" / "ingot.sock")


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {SERVE_ENV["listen"]: "0.0.0.0:7733", SERVE_ENV["model_dir"]: "a=/a", SERVE_ENV["read_only"]: "0"}
    config = _serve_config(monkeypatch, tmp_path, env, "--listen", "127.0.0.1:9000", "--model-dir", "b=/b")
    assert config.listen == Address(host="127.0.0.1", port=9000)
    assert [d.name.short for d in config.model_dirs] == ["b"]
    assert config.read_only is None  # "0": decided by the store's mount
    assert config.health is None and config.socket_path == tmp_path / "ingot.sock"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({SERVE_ENV["read_only"]: "maybe"}, "INGOT_READ_ONLY='maybe': write 1 or 0"),
        ({SERVE_ENV["tls_cert"]: "/c.pem"}, "--tls-cert and --tls-key go together (INGOT_TLS_CERT and INGOT_TLS_KEY)"),
        ({SERVE_ENV["health"]: "unix:/run/h.sock"}, "--health takes HOST:PORT"),
        ({SERVE_ENV["model_dir"]: "Bad!Name=/x"}, "model dir 'Bad!Name=/x'"),
        ({SERVE_ENV["listen"]: "0.0.0.0:7733"}, "requires TLS (--tls-cert and --tls-key) and a token"),
    ],
)
def test_bad_settings_from_the_environment_are_one_line_and_exit_2(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "serve"],
        env={**os.environ, "INGOT_HOME": str(tmp_path), "INGOT_TOKEN": "", **env},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_bad_model_dir_stops_the_daemon_before_it_listens(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "serve", "--model-dir", f"m={tmp_path / 'empty'}"],
        env={**os.environ, "INGOT_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert f"--model-dir: the model folder {tmp_path / 'empty'} holds no ingot-modelfile.json" in done.stderr
    assert not (tmp_path / "home" / "ingot.sock").exists()


def test_a_read_only_home_needs_the_socket_elsewhere(tmp_path: Path) -> None:
    from read_only import made_read_only

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    with made_read_only(home) as how:
        if how is None:
            pytest.skip("cannot make a folder read-only here")
        done = subprocess.run(
            [sys.executable, "-m", "ingot.cli.main", "serve"],
            env={**os.environ, "INGOT_HOME": str(home)}, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert "is read-only; put it somewhere writable with INGOT_SOCKET or --socket" in done.stderr
