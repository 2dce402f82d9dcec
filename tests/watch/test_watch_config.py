"""config.yaml's `watch:` section: what it means, and one precise error (file:line:col) for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.config import load_daemon_config
from ingot.daemon.watch import ConfigError, PushTarget, RetrySettings, WatchConfig, parse_push_target
from ingot.registry.home import IngotHome


def _write_config(home: IngotHome, text: str) -> Path:
    home.root.mkdir(parents=True, exist_ok=True)
    path = home.path("config.yaml")
    path.write_text(text)
    return path


def test_no_config_file_means_no_watcher(home: IngotHome) -> None:
    config = load_daemon_config(home)
    assert config.path is None and config.watch is None


def test_watch_section_is_read_with_every_setting(home: IngotHome, tree: Path) -> None:
    path = _write_config(
        home,
        f"""\
watch:
  dir: {tree}
  push:
    - localhost:5000/team
    - registry: registry.example.com
      insecure: true
  prune: true
  reload: false
  copy: true
  debounce: 250ms
  resync: 2m
  retry:
    initial: 1s
    max: 30s
    attempts: 2
""",
    )
    config = load_daemon_config(home)
    assert config.path == path
    assert config.watch == WatchConfig(
        root=tree,
        push=(PushTarget("localhost:5000", "team"), PushTarget("registry.example.com", None, insecure=True)),
        prune=True,
        reload=False,
        copy=True,
        debounce=0.25,
        resync=120.0,
        retry=RetrySettings(initial=1.0, max=30.0, attempts=2),
    )
    # Each target remembers where it was declared, for push errors.
    assert str(config.watch.push[1].origin) == f"{path}:5:17"


def test_relative_dir_is_relative_to_the_config_file(home: IngotHome) -> None:
    (home.root / "models").mkdir(parents=True)
    _write_config(home, "watch:\n  dir: models\n")
    config = load_daemon_config(home)
    assert config.watch is not None and config.watch.root == home.root / "models"
    assert config.watch.push == () and config.watch.prune is False and config.watch.reload is True


@pytest.mark.parametrize(
    ("body", "where", "message", "hint"),
    [
        ("watch:\n  dir: {tree}\n  prnue: true\n", "3:3", "watch: unknown key 'prnue'", "did you mean 'prune'?"),
        ("watch:\n  dir: {tree}\n  prune: yes please\n", "3:10", "watch.prune: expected true or false", None),
        ("watch:\n  dir: {tree}\n  debounce: soon\n", "3:13", "watch.debounce: invalid duration 'soon'", "500ms"),
        ("watch:\n  dir: {tree}\n  push: [team/models]\n", "3:10", "names no registry host", "localhost"),
        ("watch:\n  dir: {tree}\n  push:\n    - registry: localhost:5000\n      insecure: 1\n", "5:17",
         "watch.push[0].insecure: expected true or false", None),
        ("watch:\n  push: [localhost:5000]\n", "2:3", "watch: 'dir' is required", None),
        ("watch:\n  dir: {tree}/missing\n", "2:8", "is not a folder", "Modelfiles"),
        ("watch:\n  dir: {tree}\n  dir: {tree}\n", "3:3", "'dir' is given twice", None),
        ("watch:\n  dir: {tree}\n  retry: {{initial: 10s, max: 1s}}\n", "3:30", "must be at least retry.initial", None),
        ("watch:\n  dir: {tree}\n  resync: 0\n", "3:11", "must be at least 1 seconds", None),
        ("wacth:\n  dir: {tree}\n", "1:1", "unknown key 'wacth'", "did you mean 'watch'?"),
        ("watch:\n  dir: [{tree}\n", "3:1", "invalid YAML", "indentation"),
        ("watch: 3\n", "1:8", "watch: expected a mapping", None),
    ],
)
def test_each_mistake_is_one_error_at_its_place(
    home: IngotHome, tree: Path, body: str, where: str, message: str, hint: str | None
) -> None:
    path = _write_config(home, body.format(tree=tree))
    with pytest.raises(ConfigError) as caught:
        load_daemon_config(home)
    error = caught.value
    assert str(error).startswith(f"{path}:{where}: "), str(error)
    assert message in error.message
    if hint is not None:
        assert error.hint is not None and hint in error.hint


@pytest.mark.parametrize(
    ("text", "host", "namespace"),
    [
        ("localhost:5000", "localhost:5000", None),
        ("localhost:5000/team", "localhost:5000", "team"),
        ("http://127.0.0.1:5000/team/", "127.0.0.1:5000", "team"),
        ("registry.example.com", "registry.example.com", None),
    ],
)
def test_push_targets(text: str, host: str, namespace: str | None) -> None:
    target = parse_push_target(text)
    assert (target.host, target.namespace) == (host, namespace)


@pytest.mark.parametrize("text", ["", "team", "localhost:5000/a/b", "localhost:5000/Team!", "host.io/ns@sha256:0"])
def test_bad_push_targets_are_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_push_target(text)
    assert caught.value.hint is not None and "host[:port][/namespace]" in caught.value.hint
