"""Authentication against real registries: htpasswd Basic auth and a Bearer token service.

Wrong or missing credentials must fail at once with one clear error (oras-py's
token backend hangs about two minutes against a Basic-auth registry).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingot.cli.main import main
from ingot.registry.oci import Credentials, RegistryAuthError, pull, push
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_packages import ingot_package
from oci_registry_server import RegistryProcess
from oci_token_gateway import TokenGateway

QUICK_S = 5.0


def _write_config(folder: Path, data: dict[str, object]) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    return path


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _login(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str, user: str,
           password: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code = main(["login", host, "-u", user, "--password-stdin"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def gateway(registry: RegistryProcess) -> Iterator[TokenGateway]:
    front = TokenGateway(registry.host, "bearer-user", "bearer-secret")
    yield front
    front.close()


def test_missing_credentials_fail_fast_with_a_login_hint(auth_registry: RegistryProcess, store: Store) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryAuthError, match="requires authentication") as caught:
        pull(store, f"{auth_registry.host}/private/model:1")
    assert time.monotonic() - started < QUICK_S
    assert f"ingot login {auth_registry.host}" in str(caught.value)


def test_wrong_password_fails_fast_and_is_never_logged(
    auth_registry: RegistryProcess, store: Store, docker_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-password-" + os.urandom(4).hex()
    _write_config(docker_config, {"auths": {auth_registry.host: {"auth": _basic(auth_registry.username, wrong)}}})
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(RegistryAuthError, match="rejected the credentials") as caught:
        pull(store, f"{auth_registry.host}/private/model:1")
    assert time.monotonic() - started < QUICK_S
    assert wrong not in str(caught.value)
    assert wrong not in caplog.text
    assert _basic(auth_registry.username, wrong) not in caplog.text


def test_login_verifies_then_saves_and_push_pull_use_it(
    auth_registry: RegistryProcess, docker_config: Path, ingot_home: Path, tiny_gguf: Path, tmp_path: Path,
    other_store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    host, user, password = auth_registry.host, auth_registry.username, auth_registry.password
    assert user is not None and password is not None
    config = _write_config(docker_config, {"auths": {}, "psFormat": "table {{.ID}}"})

    code, out, err = _login(monkeypatch, capsys, host, user, "wrong-password")
    assert code == 1 and "rejected" in err
    assert json.loads(config.read_text())["auths"] == {}

    code, out, err = _login(monkeypatch, capsys, host, user, password)
    assert code == 0, err
    assert password not in out + err
    saved = json.loads(config.read_text())
    assert saved["psFormat"] == "table {{.ID}}"  # other settings survive the rewrite
    assert base64.b64decode(saved["auths"][host]["auth"]).decode() == f"{user}:{password}"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    ref = Reference.parse(f"{host}/private/model:1")
    ingot_package(Store(ingot_home / "models"), ref, tiny_gguf, tmp_path)
    assert main(["push", str(ref), "--quiet"]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{host}/private/model:1@sha256:")
    assert pull(other_store, ref).blobs_transferred > 0

    assert main(["logout", host]) == 0
    assert host not in json.loads(config.read_text())["auths"]
    with pytest.raises(RegistryAuthError):
        pull(other_store, ref)


def test_credential_helper_is_used_for_reading_and_storing(
    auth_registry: RegistryProcess, docker_config: Path, tmp_path: Path, store: Store, tiny_gguf: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    host, user, password = auth_registry.host, auth_registry.username, auth_registry.password
    assert user is not None and password is not None
    vault = tmp_path / "vault.json"
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-ingottest"
    # A real credential helper speaking Docker's protocol (get / store / erase on stdin).
    helper.write_text(f"""#!{sys.executable}
import json, sys
from pathlib import Path
vault = Path({str(vault)!r})
data = json.loads(vault.read_text()) if vault.exists() else {{}}
action, payload = sys.argv[1], sys.stdin.read()
if action == "get":
    entry = data.get(payload.strip())
    if entry is None:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({{"ServerURL": payload.strip(), "Username": entry[0], "Secret": entry[1]}}))
elif action == "store":
    item = json.loads(payload)
    data[item["ServerURL"]] = [item["Username"], item["Secret"]]
    vault.write_text(json.dumps(data))
elif action == "erase":
    data.pop(payload.strip(), None)
    vault.write_text(json.dumps(data))
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper_dir}{os.pathsep}{os.environ['PATH']}")
    config = _write_config(docker_config, {"credHelpers": {host: "ingottest"}})

    code, out, err = _login(monkeypatch, capsys, host, user, password)
    assert code == 0, err
    assert "docker-credential-ingottest" in out
    assert json.loads(vault.read_text()) == {host: [user, password]}
    assert password not in config.read_text()

    ref = Reference.parse(f"{host}/helper/model:1")
    ingot_package(store, ref, tiny_gguf, tmp_path)
    assert push(store, ref).blobs_transferred > 0

    assert main(["logout", host]) == 0
    assert json.loads(vault.read_text()) == {}


def test_bearer_token_registry_round_trip(
    gateway: TokenGateway, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    creds = Credentials(username="bearer-user", password="bearer-secret")
    ref = Reference.parse(f"{gateway.host}/tokens/model:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    assert push(store, ref, credentials=creds).digest == descriptor.digest
    assert pull(other_store, ref, credentials=creds).digest == descriptor.digest
    assert gateway.tokens_issued >= 2
    assert "repository:tokens/model:pull,push" in gateway.scopes


def test_bearer_token_service_refusal_fails_fast(gateway: TokenGateway, store: Store) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryAuthError, match="token service .* rejected"):
        pull(store, f"{gateway.host}/tokens/model:1", credentials=Credentials("bearer-user", "wrong"))
    assert time.monotonic() - started < QUICK_S
    assert gateway.tokens_refused == 1


def test_bearer_login_checks_credentials_with_the_token_service(
    gateway: TokenGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], docker_config: Path
) -> None:
    code, _, err = _login(monkeypatch, capsys, gateway.host, "bearer-user", "wrong")
    assert code == 1 and "rejected" in err
    assert not (docker_config / "config.json").exists()
    code, out, err = _login(monkeypatch, capsys, gateway.host, "bearer-user", "bearer-secret")
    assert code == 0, err
    assert "did not ask" not in out
