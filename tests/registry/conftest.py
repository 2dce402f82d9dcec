"""Fixtures for the registry tests: real synthetic GGUF files written once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

SMALL_SPEC = SyntheticSpec()


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default synthetic model (64 wide, 2 layers, 512 tokens, F32). Read-only: copy it to change it."""
    return write_synthetic_gguf(tmp_path_factory.mktemp("small") / "small.gguf", SMALL_SPEC)


@pytest.fixture
def model_copy(small_model: Path, tmp_path: Path) -> Path:
    """A private copy of `small_model` that a test may patch or truncate."""
    target = tmp_path / "model.gguf"
    shutil.copyfile(small_model, target)
    return target
