"""quantize_gguf through real llama.cpp in a child process, on small synthetic models."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import llama_cpp
import pytest

from ingot.registry.gguf_info import GGUFError, inspect_gguf
from ingot.registry.quantize import QUANT_TYPES, QuantizeError, parse_quant_type, quantize_gguf
from ingot.registry.synthetic import BOS_ID, SyntheticSpec, counting_range, counting_sequence, write_synthetic_gguf

WIDE_SPEC = SyntheticSpec(n_embd=256, n_head=4, dtype="f16", counting=True)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An F16 counting model whose rows (256, 768) suit every K-quant."""
    return write_synthetic_gguf(tmp_path_factory.mktemp("wide") / "wide-f16.gguf", WIDE_SPEC)


@pytest.fixture(scope="module")
def wide_q4_k_m(wide_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    out_dir = tmp_path_factory.mktemp("q4km")
    fractions: list[float] = []
    result = quantize_gguf(wide_model, out_dir / "wide-q4_k_m.gguf", "Q4_K_M", progress=fractions.append, threads=2)
    return result, fractions


def gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_q4_k_m_writes_a_smaller_q4_k_m_file(wide_model: Path, wide_q4_k_m: tuple[Path, list[float]]) -> None:
    result, _ = wide_q4_k_m
    info = inspect_gguf(result)
    assert info.file_type == "Q4_K_M"
    assert info.quantization == "Q4_K"
    assert info.file_size < inspect_gguf(wide_model).file_size / 2
    assert {t.name for t in info.tensors} == {t.name for t in inspect_gguf(wide_model).tensors}
    assert sorted(p.name for p in result.parent.iterdir()) == [result.name]  # no temp file left


def test_progress_runs_from_zero_to_one(wide_q4_k_m: tuple[Path, list[float]]) -> None:
    _, fractions = wide_q4_k_m
    n_tensors = 2 + 9 * WIDE_SPEC.n_layer + 1
    assert len(fractions) == n_tensors + 1  # one per tensor started, then done
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert 0.0 < fractions[-2] < 1.0


def test_quantized_counting_model_still_counts(wide_q4_k_m: tuple[Path, list[float]]) -> None:
    result, _ = wide_q4_k_m
    ids = counting_range(WIDE_SPEC)
    llm = llama_cpp.Llama(model_path=str(result), n_ctx=64, n_threads=2, verbose=False)
    try:
        for last in (ids.start, ids.stop - 2):
            produced = []
            for token in llm.generate([BOS_ID, last], temp=0.0, top_k=1):
                produced.append(token)
                if len(produced) == 6:
                    break
            llm.reset()
            assert produced == counting_sequence(WIDE_SPEC, last, 6)
    finally:
        llm.close()


def test_legacy_quant_on_a_narrow_model(small_model: Path, tmp_path: Path) -> None:
    result = quantize_gguf(small_model, tmp_path / "small-q8_0.gguf", "q8_0")
    assert inspect_gguf(result).file_type == "Q8_0"


def test_k_quant_refuses_rows_that_are_not_multiples_of_256(small_model: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError) as caught:
        quantize_gguf(small_model, tmp_path / "out.gguf", "q4_k_m")
    message = str(caught.value)
    assert "'token_embd.weight' has rows of 64 values" in message
    assert "multiple of 256" in message
    assert list(tmp_path.iterdir()) == []


def test_unknown_type_lists_the_valid_ones(small_model: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError) as caught:
        quantize_gguf(small_model, tmp_path / "out.gguf", "q4_k_x")
    assert "unknown quantization type 'q4_k_x'" in str(caught.value)
    assert all(name.lower() in str(caught.value) for name in QUANT_TYPES)


def test_names_are_case_insensitive_and_match_llama_cpp() -> None:
    assert parse_quant_type("q4_k_m") == parse_quant_type("Q4_K_M")
    assert parse_quant_type(" bf16 ").name == "BF16"
    for name, quant in QUANT_TYPES.items():
        assert quant.ftype == getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}"), name
    assert parse_quant_type("q4_k_m").block_size == 256
    assert parse_quant_type("q8_0").block_size == 32


def test_quantized_input_is_refused(wide_q4_k_m: tuple[Path, list[float]], tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize_gguf(wide_q4_k_m[0], tmp_path / "again.gguf", "q8_0")


def test_output_over_the_input_is_refused(small_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m.gguf"
    shutil.copyfile(small_model, copy)
    with pytest.raises(QuantizeError, match="overwrite the input"):
        quantize_gguf(copy, copy, "q8_0")


def test_bad_source_is_refused_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + bytes(100))
    with pytest.raises(GGUFError) as caught:
        quantize_gguf(bad, tmp_path / "out.gguf", "q8_0")
    assert caught.value.reason == "bad_magic"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


def test_llama_cpp_failure_in_the_child_becomes_one_error(small_model: Path, tmp_path: Path) -> None:
    # A well-formed file of an architecture llama.cpp does not know passes
    # inspection, so the child runs and llama.cpp itself refuses.
    data = small_model.read_bytes().replace(b"llama.", b"llamb.")
    arch = gguf_string("general.architecture") + struct.pack("<I", 8)
    data = data.replace(arch + gguf_string("llama"), arch + gguf_string("llamb"))
    source = tmp_path / "unknown-arch.gguf"
    source.write_bytes(data)
    assert inspect_gguf(source).architecture == "llamb"
    with pytest.raises(QuantizeError) as caught:
        quantize_gguf(source, tmp_path / "out.gguf", "q8_0")
    message = str(caught.value)
    assert "failed (exit status 1)" in message
    assert "llamb" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unknown-arch.gguf"]
