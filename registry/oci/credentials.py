"""Registry credentials from, and into, Docker's config.json and credential helpers.

Reading goes through the `docker` package (`docker.auth.load_config`), which
honours `$DOCKER_CONFIG`, `auths`, `credsStore` and `credHelpers` exactly as
the Docker CLI does. Writing (`ingot login`) keeps every other key of the file,
stores the secret in the credential helper when one is configured for the
host, and replaces the file atomically with mode 0600. No function here logs
or formats a secret.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.auth
import docker.credentials
import docker.errors
from docker.utils.config import find_config_file

from ingot.registry.oci.errors import CredentialsError

__all__ = [
    "Credentials",
    "config_file_for_writing",
    "erase_credentials",
    "load_credentials",
    "save_credentials",
]

_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (refresh) token; the repr never shows a secret."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None

    def basic_token(self) -> str:
        """The base64 `user:password` of a Basic `Authorization` header."""
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return base64.b64encode(raw).decode("ascii")


def _config_key(host: str) -> str:
    """The key the Docker CLI files `host` under (Docker Hub has a legacy URL key)."""
    return _DOCKER_HUB_KEY if host in _DOCKER_HUB_ALIASES else host


def load_credentials(host: str, *, config_path: Path | None = None) -> Credentials | None:
    """Credentials for `host` from the docker config (and its helpers), or None when there are none."""
    if config_path is not None and not config_path.exists():
        return None
    try:
        auth_config = docker.auth.load_config(str(config_path) if config_path else None)
        entry = auth_config.resolve_authconfig(host)
    except docker.errors.DockerException as exc:
        where = config_path or find_config_file() or "docker config"
        raise CredentialsError(
            f"cannot read credentials for {host} from {where}: {exc}",
            hint="check the file's JSON and that its credential helper (docker-credential-*) is on PATH",
        ) from None
    if not entry:
        return None
    username = entry.get("username") or entry.get("Username")
    password = entry.get("password") or entry.get("Password")
    token = entry.get("IdentityToken") or entry.get("identitytoken")
    if not (username or password or token):
        return None
    return Credentials(username=username, password=password, identity_token=token)


def config_file_for_writing(config_path: Path | None = None) -> Path:
    """Where `ingot login` writes: the explicit path, `$DOCKER_CONFIG/config.json`, else ~/.docker/config.json."""
    if config_path is not None:
        return config_path
    env_dir = os.environ.get("DOCKER_CONFIG")
    if env_dir:
        return Path(env_dir) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _read_raw(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot read {path}: {exc}", hint="fix or remove the file, then log in again"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path} does not hold a JSON object", hint="fix or remove the file")
    return data


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent="\t")
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _helper_for(data: dict[str, Any], key: str) -> str | None:
    helpers = data.get("credHelpers") or {}
    return helpers.get(key) or data.get("credsStore") or None


def save_credentials(host: str, username: str, password: str, *, config_path: Path | None = None) -> str:
    """Store credentials for `host`; return where they went (the file, or the helper's name)."""
    path = config_file_for_writing(config_path)
    data = _read_raw(path)
    key = _config_key(host)
    helper = _helper_for(data, key)
    auths = data.setdefault("auths", {})
    if helper:
        try:
            docker.credentials.Store(helper).store(server=key, username=username, secret=password)
        except docker.credentials.StoreError as exc:
            raise CredentialsError(
                f"credential helper docker-credential-{helper} could not store the login for {host}: {exc}",
                hint="check that the helper works (`docker-credential-" + helper + " list`)",
            ) from None
        # The Docker CLI leaves an empty entry so tools know a login exists.
        auths[key] = {}
        _write_atomic(path, data)
        return f"docker-credential-{helper}"
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": token}
    _write_atomic(path, data)
    return str(path)


def erase_credentials(host: str, *, config_path: Path | None = None) -> bool:
    """Forget the login for `host`; return whether there was one."""
    path = config_file_for_writing(config_path)
    data = _read_raw(path)
    key = _config_key(host)
    found = False
    helper = _helper_for(data, key)
    if helper:
        try:
            docker.credentials.Store(helper).erase(key)
            found = True
        except docker.credentials.CredentialsNotFound:
            pass
        except docker.credentials.StoreError as exc:
            raise CredentialsError(
                f"credential helper docker-credential-{helper} could not erase the login for {host}: {exc}"
            ) from None
    auths = data.get("auths") or {}
    if key in auths:
        del auths[key]
        found = True
        _write_atomic(path, data)
    return found
