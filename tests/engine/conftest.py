"""Fixtures for the engine tests: small synthetic GGUFs (written once per session) and engines over them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import COUNTING_SPEC, RANDOM_SPEC

from ingot.daemon.engine import Engine, LoadOptions
from ingot.registry.quantize import quantize_gguf
from ingot.registry.synthetic import write_synthetic_gguf


@pytest.fixture(scope="session")
def counting_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("models") / "counting.gguf", COUNTING_SPEC)


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("models") / "random.gguf", RANDOM_SPEC)


@pytest.fixture(scope="session")
def quantized_model(random_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random model in Q8_0: quantized weights are what makes logits batch-invariant on CPU."""
    return quantize_gguf(random_model, tmp_path_factory.mktemp("models") / "random-q8_0.gguf", "Q8_0")


@pytest.fixture
def counting_engine(counting_model: Path) -> Iterator[Engine]:
    with Engine(LoadOptions(model_path=str(counting_model), n_ctx=128, n_parallel=4)) as engine:
        yield engine


@pytest.fixture
def random_engine(random_model: Path) -> Iterator[Engine]:
    with Engine(LoadOptions(model_path=str(random_model), n_ctx=256, n_parallel=4)) as engine:
        yield engine
