"""Docker config.json handling: $DOCKER_CONFIG, auths, atomic writes; plus connection defaults."""

from __future__ import annotations

import base64
import json
import stat
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from ingot.registry.oci import ClientOptions, Credentials, erase_credentials, load_credentials, save_credentials
from ingot.registry.oci.errors import CredentialsError
from ingot.registry.oci.options import RetryPolicy, is_loopback_host
from ingot.registry.oci.retry import Backoff, retry_after_seconds


def test_docker_config_env_is_honoured(docker_config: Path) -> None:
    token = base64.b64encode(b"alice:s3cret").decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {"reg.example:5000": {"auth": token}}}))
    assert load_credentials("reg.example:5000") == Credentials("alice", "s3cret")
    assert load_credentials("other.example") is None


def test_credentials_repr_hides_the_secret() -> None:
    text = repr(Credentials("bob", "hunter2", identity_token="tok-123"))
    assert "bob" in text and "hunter2" not in text and "tok-123" not in text


def test_save_keeps_other_settings_and_is_private(docker_config: Path) -> None:
    config = docker_config / "config.json"
    config.write_text(json.dumps({"auths": {"a.example": {"auth": "eDp5"}}, "detachKeys": "ctrl-e"}))
    where = save_credentials("b.example", "carol", "pw")
    assert where == str(config)
    data = json.loads(config.read_text())
    assert data["detachKeys"] == "ctrl-e"
    assert data["auths"]["a.example"] == {"auth": "eDp5"}
    assert load_credentials("b.example") == Credentials("carol", "pw")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert [p.name for p in docker_config.iterdir()] == ["config.json"]  # no temp file left behind

    assert erase_credentials("b.example") is True
    assert erase_credentials("b.example") is False
    assert "b.example" not in json.loads(config.read_text())["auths"]


def test_docker_hub_logins_use_the_legacy_key(docker_config: Path) -> None:
    save_credentials("docker.io", "dave", "pw")
    data = json.loads((docker_config / "config.json").read_text())
    assert list(data["auths"]) == ["https://index.docker.io/v1/"]
    assert load_credentials("docker.io") == Credentials("dave", "pw")


def test_unreadable_config_is_one_clear_error(docker_config: Path) -> None:
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(CredentialsError, match="cannot read"):
        save_credentials("x.example", "u", "p")


@pytest.mark.filterwarnings("ignore:docker-credential-does-not-exist-anywhere:UserWarning")
def test_broken_credential_helper_is_one_clear_error(docker_config: Path) -> None:
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "does-not-exist-anywhere"}))
    with pytest.raises(CredentialsError, match="docker-credential"):
        load_credentials("x.example")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("127.8.9.10", True), ("localhost:5000", True), ("[::1]:5000", True),
     ("::1", True), ("registry.example.com", False), ("10.0.0.1:5000", False), ("localhost.example.com", False)],
)
def test_loopback_hosts_use_plain_http(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    assert ClientOptions().scheme_for(host) == ("http" if loopback else "https")


def test_insecure_means_plain_http_and_no_tls_verification(tmp_path: Path) -> None:
    assert ClientOptions(insecure=True).scheme_for("registry.example.com") == "probe"
    assert ClientOptions(insecure=True).scheme_for("localhost:5000") == "http"
    assert ClientOptions(insecure=True).tls_verify() is False
    ca = tmp_path / "ca.pem"
    assert ClientOptions(ca_cert=ca).tls_verify() == str(ca)
    assert ClientOptions().tls_verify() is True


def _response(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 503
    response.headers.update(headers)
    return response


def test_retry_after_seconds_and_http_dates() -> None:
    assert retry_after_seconds(_response({"Retry-After": "7"})) == 7.0
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(_response({"Retry-After": later}), now=now.timestamp()) == pytest.approx(30.0)
    assert retry_after_seconds(_response({"Retry-After": "soon"})) is None
    assert retry_after_seconds(_response({})) is None


def test_backoff_prefers_retry_after_capped_by_policy() -> None:
    waits: list[float] = []
    backoff = Backoff(RetryPolicy(attempts=3, base_delay=1.0, max_delay=4.0, max_retry_after=10.0), "x",
                      sleep=waits.append)
    backoff.wait("HTTP 429", _response({"Retry-After": "3"}))
    backoff.wait("HTTP 429", _response({"Retry-After": "3600"}))
    assert waits == [3.0, 10.0]
    assert backoff.exhausted()
    backoff.reset()
    backoff.wait("reset")
    assert 0.5 <= waits[-1] <= 1.0
