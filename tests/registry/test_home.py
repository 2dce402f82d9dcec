"""$INGOT_HOME: created private, an existing folder left as its owner made it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ingot.cli.main import main as ingot_main
from ingot.registry.home import IngotHome
from ingot.registry.store import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_private_to_its_user(tmp_path: Path) -> None:
    home = IngotHome(tmp_path / "deep" / "home")
    Store.open(home)
    assert _mode(home.root) == 0o700
    assert (home.models / "index.json").is_file()


def test_an_existing_home_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    Store.open(IngotHome(shared))
    assert _mode(shared) == 0o750


def test_the_cli_creates_the_home_0700(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fresh-home"
    monkeypatch.setenv("INGOT_HOME", str(root))
    assert ingot_main(["list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert _mode(root) == 0o700
