"""config.yaml's `http:` and `streams:` sections, and which Host names a listener answers to."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.config import load_daemon_config
from ingot.daemon.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_WRITE_STALL_SECONDS, ClientLimits, HostPolicy
from ingot.daemon.watch import ConfigError
from ingot.registry.home import IngotHome


def _home_with(tmp_path: Path, text: str) -> IngotHome:
    home = IngotHome(tmp_path / "home")
    home.root.mkdir()
    home.path("config.yaml").write_text(text)
    return home


def test_limits_default_without_a_config(tmp_path: Path) -> None:
    limits = load_daemon_config(IngotHome(tmp_path / "none")).limits
    assert limits == ClientLimits(None, DEFAULT_MAX_BODY_BYTES, DEFAULT_WRITE_STALL_SECONDS)


def test_http_and_streams_sections_are_read(tmp_path: Path) -> None:
    home = _home_with(tmp_path, "http:\n  allowed_hosts: [Ingot.LAN, '*.lab.example']\n  max_body_bytes: 1048576\n"
                                "streams:\n  write_stall_timeout: 2m\n")
    limits = load_daemon_config(home).limits
    assert limits == ClientLimits(("ingot.lan", "*.lab.example"), 1048576, 120.0)


@pytest.mark.parametrize(
    "body, where, message",
    [
        ("http:\n  allowed_host: [a]\n", "2:3", "unknown key 'allowed_host'"),
        ("http:\n  allowed_hosts: ['http://ingot.lan']\n", "2:19", "is not a host name"),
        ("http:\n  allowed_hosts: ['ingot.lan:8080']\n", "2:19", "is not a host name"),
        ("http:\n  max_body_bytes: 10\n", "2:19", "must be at least 1024"),
        ("streams:\n  write_stall_timeout: 100ms\n", "2:24", "too short"),
        ("streams:\n  write_stall_timeout: soon\n", "2:24", "invalid duration"),
    ],
)
def test_each_mistake_is_one_error_at_its_place(tmp_path: Path, body: str, where: str, message: str) -> None:
    home = _home_with(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_daemon_config(home)
    assert str(caught.value).startswith(f"{home.path('config.yaml')}:{where}: "), str(caught.value)
    assert message in caught.value.message


def test_a_loopback_listener_answers_to_loopback_names_ip_literals_and_its_own_name() -> None:
    policy = HostPolicy("127.0.0.1")
    for host in (None, "", "localhost", "LOCALHOST:11435", "x.localhost", "127.0.0.1:1", "[::1]:1", "10.0.0.5",
                 "localhost."):
        assert policy.allows(host), host
    for host in ("attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "evil:80"):
        assert not policy.allows(host), host
    assert HostPolicy("ingot.localhost").allows("ingot.localhost:11435")


def test_off_loopback_any_name_unless_a_list_is_configured() -> None:
    # Off loopback a token is required, so a rebound page holds no credential: names are not the defence.
    assert HostPolicy("0.0.0.0").allows("gpu-box.corp.example")
    strict = HostPolicy("0.0.0.0", ("gpu-box.corp.example",))
    assert strict.allows("gpu-box.corp.example:11435")
    assert not strict.allows("attacker.example")
    assert HostPolicy("127.0.0.1", ("*",)).allows("anything.example")
