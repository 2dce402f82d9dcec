"""`ServeConfig.check`: settings that cannot work are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.server import ConfigError, ServeConfig
from ingot.registry.home import IngotHome


def _config(tmp_path: Path, **settings: int) -> ServeConfig:
    return ServeConfig(home=IngotHome(tmp_path), socket_path=tmp_path / "d.sock", **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("reserved", [4, 5, -1])
def test_interactive_slots_leave_batch_work_at_least_one_slot(tmp_path: Path, reserved: int) -> None:
    with pytest.raises(ConfigError, match=r"--interactive-slots must be 0 to --parallel - 1 \(3\)"):
        _config(tmp_path, parallel=4, interactive_slots=reserved).check()


def test_interactive_slots_within_parallel_are_fine(tmp_path: Path) -> None:
    _config(tmp_path, parallel=4, interactive_slots=3).check()
    _config(tmp_path, parallel=1).check()
