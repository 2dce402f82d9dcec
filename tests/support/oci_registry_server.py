"""A real CNCF distribution registry (`docker-registry`) on a free loopback port, for tests.

Never the stock /etc config (it listens on every interface): each instance
gets its own config file, storage folder and port, and is stopped on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["RegistryProcess", "find_registry_binary", "free_port", "start_registry"]

_START_DEADLINE_S = 15.0


def find_registry_binary() -> str | None:
    return shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryProcess:
    """One running registry: `host` is `127.0.0.1:<port>`."""

    host: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    username: str | None = None
    password: str | None = None

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _config(address: str, port: int, storage: Path, htpasswd: Path | None, tls: tuple[Path, Path] | None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: {address}:{port}",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: ingot-test", f"    path: {htpasswd}"]
    return "\n".join(lines) + "\n"


def _htpasswd_line(username: str, password: str) -> str:
    import bcrypt  # test dependency: htpasswd needs bcrypt hashes

    # Cost 4: the minimum; the registry checks it on every request.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{username}:{hashed}\n"


def start_registry(
    binary: str,
    workdir: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    address: str = "127.0.0.1",
    tls: tuple[Path, Path] | None = None,
) -> RegistryProcess:
    """Start a registry and wait until `GET /v2/` answers; retry on a port clash.

    `tls` is (certificate, key) PEM files: the registry then speaks HTTPS only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    htpasswd = None
    if username is not None and password is not None:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(_htpasswd_line(username, password))
    last_log = ""
    for _attempt in range(3):
        port = free_port(address)
        config = workdir / "config.yml"
        config.write_text(_config(address, port, workdir / "storage", htpasswd, tls))
        log_path = workdir / "registry.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        server = RegistryProcess(f"{address}:{port}", workdir / "storage", process, log_path, username, password,
                                 tls=tls is not None)
        deadline = time.monotonic() + _START_DEADLINE_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the readiness probe does not check the test certificate
                    reply = requests.get(f"{server.url}/v2/", timeout=1, verify=False)
                if reply.status_code in (200, 401):
                    return server
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        server.stop()
        last_log = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start; its log:\n{last_log}")
