"""inspect_gguf on real synthetic files, and on files broken the ways the wild breaks them."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import gguf
import pytest

from ingot.cli.main import main as ingot_main
from ingot.registry.gguf_info import ArraySummary, GGUFError, inspect_gguf
from ingot.registry.synthetic import BOS_ID, EOS_ID, SyntheticSpec, build_vocab, write_synthetic_gguf

SMALL_SPEC = SyntheticSpec()  # what the `small_model` fixture holds


def patch_once(path: Path, old: bytes, new: bytes, *, after: bytes = b"") -> None:
    """Replace the first ``old`` that follows ``after`` (same length, so every offset stays valid)."""
    assert len(old) == len(new)
    data = bytearray(path.read_bytes())
    start = data.index(after) + len(after) if after else 0
    at = data.index(old, start)
    data[at : at + len(old)] = new
    path.write_bytes(bytes(data))


def patch_at(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(new)] = new
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def reason_of(path: Path) -> GGUFError:
    with pytest.raises(GGUFError) as caught:
        inspect_gguf(path)
    assert str(path) in str(caught.value)
    return caught.value


# ---------------------------------------------------------------------------
# valid files


def test_reads_the_shape_of_a_synthetic_model(small_model: Path) -> None:
    info = inspect_gguf(small_model)
    spec = SMALL_SPEC
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.name == "ingot-synthetic"
    assert info.file_type == "F32"
    assert info.quantization == "F32"
    assert info.context_length == spec.n_ctx
    assert info.block_count == spec.n_layer
    assert info.embedding_length == spec.n_embd
    assert info.feed_forward_length == spec.n_ff
    assert info.head_count == spec.n_head
    assert info.head_count_kv == spec.n_head_kv
    assert info.key_length == info.value_length == spec.n_embd // spec.n_head
    assert info.vocab_size == spec.n_vocab
    assert info.tokenizer_model == "llama"
    assert (info.bos_token_id, info.eos_token_id) == (BOS_ID, EOS_ID)
    assert info.chat_template is None
    assert info.file_size == small_model.stat().st_size


def test_byte_accounting_matches_the_spec(small_model: Path) -> None:
    info = inspect_gguf(small_model)
    d, ff, vocab = SMALL_SPEC.n_embd, SMALL_SPEC.n_ff, SMALL_SPEC.n_vocab
    assert ff is not None
    per_layer = 4 * (2 * d + 4 * d * d + 3 * d * ff)  # two norms, q/k/v/o, gate/up/down; F32
    assert info.layer_bytes == (per_layer,) * SMALL_SPEC.n_layer
    assert info.token_embd_bytes == 4 * vocab * d
    assert info.output_bytes == 4 * (vocab * d + d)
    assert info.other_bytes == 0
    assert not info.tied_embeddings
    assert info.parameter_count * 4 == info.tensor_bytes
    assert info.tensor_bytes + info.tensor_data_offset <= info.file_size


def test_tensor_table_agrees_with_the_gguf_package_reader(small_model: Path) -> None:
    ours = inspect_gguf(small_model)
    theirs = gguf.GGUFReader(small_model)
    assert ours.tensor_data_offset == theirs.data_offset
    assert [(t.name, t.shape, t.ggml_type, t.n_bytes, t.offset) for t in ours.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type.name, int(t.n_bytes), int(t.data_offset))
        for t in theirs.tensors
    ]


def test_metadata_keeps_scalars_and_summarises_big_arrays(small_model: Path) -> None:
    info = inspect_gguf(small_model)
    assert info.metadata["llama.block_count"] == SMALL_SPEC.n_layer
    assert info.metadata["general.architecture"] == "llama"
    assert info.metadata["tokenizer.ggml.tokens"] == ArraySummary("string", SMALL_SPEC.n_vocab)
    assert info.metadata["tokenizer.ggml.scores"] == ArraySummary("float32", SMALL_SPEC.n_vocab)


def test_f16_model_and_chat_template(tmp_path: Path) -> None:
    spec = SyntheticSpec(dtype="f16", chat_template="{{ messages }}", n_head=2, n_head_kv=1)
    info = inspect_gguf(write_synthetic_gguf(tmp_path / "f16.gguf", spec))
    assert info.file_type == "F16"
    assert info.quantization == "F16"
    assert info.chat_template == "{{ messages }}"
    assert info.head_count_kv == 1
    types = {t.name: t.ggml_type for t in info.tensors}
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.attn_q.weight"] == "F16"


def test_to_json_is_serialisable_and_lists_tensors_only_on_request(small_model: Path) -> None:
    info = inspect_gguf(small_model)
    summary = json.loads(json.dumps(info.to_json()))
    assert "tensors" not in summary
    assert summary["tensor_count"] == len(info.tensors)
    assert summary["tensor_types"] == {"F32": len(info.tensors)}
    assert summary["metadata"]["tokenizer.ggml.tokens"] == {"array": "string", "length": SMALL_SPEC.n_vocab}
    full = json.loads(json.dumps(info.to_json(tensors=True)))
    assert [t["name"] for t in full["tensors"]] == [t.name for t in info.tensors]


def test_a_model_without_output_matrix_reports_tied_embeddings(model_copy: Path) -> None:
    # Renaming output.weight to another same-length name leaves the model without one.
    patch_once(model_copy, b"output.weight", b"outpux.weight", after=b"output_norm.weight")
    info = inspect_gguf(model_copy)
    assert info.tied_embeddings
    assert info.other_bytes == 4 * SMALL_SPEC.n_vocab * SMALL_SPEC.n_embd


def test_inspecting_a_32k_vocabulary_is_fast(tmp_path: Path) -> None:
    path = write_synthetic_gguf(tmp_path / "vocab.gguf", SyntheticSpec(n_vocab=32000, n_layer=1))
    started = time.perf_counter()
    info = inspect_gguf(path)
    elapsed = time.perf_counter() - started
    assert info.vocab_size == 32000
    # Tens of milliseconds here; the bound leaves room for a busy shared machine.
    assert elapsed < 0.5, f"inspect_gguf took {elapsed:.2f}s"


# ---------------------------------------------------------------------------
# files llama.cpp must never see


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "absent.gguf").reason == "unreadable"
    assert reason_of(tmp_path).reason == "unreadable"


def test_bad_magic_names_the_first_bytes(model_copy: Path) -> None:
    patch_at(model_copy, 0, b"GGML")
    error = reason_of(model_copy)
    assert error.reason == "bad_magic"
    assert "not a GGUF file: starts with b'GGML'" in error.message
    assert error.hint


def test_bad_magic_in_a_tiny_file(tmp_path: Path) -> None:
    path = tmp_path / "zip.gguf"
    path.write_bytes(b"PK\x03\x04")
    assert reason_of(path).reason == "bad_magic"


@pytest.mark.parametrize("version", [1, 4, 0x7FFFFFFF])
def test_unsupported_version(model_copy: Path, version: int) -> None:
    patch_at(model_copy, 4, struct.pack("<I", version))
    error = reason_of(model_copy)
    assert error.reason == "unsupported_version"
    assert f"unsupported GGUF version {version}" in error.message


def test_big_endian_file_is_named_as_such(model_copy: Path) -> None:
    patch_at(model_copy, 4, struct.pack(">I", 3))
    error = reason_of(model_copy)
    assert error.reason == "unsupported_version"
    assert "big-endian" in error.message


@pytest.mark.parametrize("size", [0, 10, 23])
def test_truncated_header(model_copy: Path, size: int) -> None:
    truncate(model_copy, size)
    assert reason_of(model_copy).reason == "truncated"


def test_truncated_inside_the_metadata(model_copy: Path) -> None:
    data = model_copy.read_bytes()
    truncate(model_copy, data.index(b"tokenizer.ggml.scores") + 100)
    error = reason_of(model_copy)
    assert error.reason == "truncated"
    assert "tokenizer.ggml.scores" in error.message


def test_truncated_inside_the_tensor_table(model_copy: Path) -> None:
    data_offset = inspect_gguf(model_copy).tensor_data_offset
    truncate(model_copy, data_offset - 60)
    error = reason_of(model_copy)
    assert error.reason == "truncated"
    assert "tensor" in error.message


def test_tensor_data_past_end_of_file_says_expected_and_actual_size(model_copy: Path) -> None:
    full_size = model_copy.stat().st_size
    truncate(model_copy, full_size - 1000)
    error = reason_of(model_copy)
    assert error.reason == "data_past_eof"
    assert "output.weight" in error.message
    assert f"expected at least {full_size:,} bytes, got {full_size - 1000:,}" in error.message


def test_duplicate_token_strings_name_the_token_and_both_ids(model_copy: Path) -> None:
    tokens = build_vocab(SMALL_SPEC.n_vocab).tokens
    first, second = tokens.index("a"), tokens.index("b")
    # Overwrite the piece "b" with "a" inside the token array.
    patch_once(model_copy, gguf_string("b"), gguf_string("a"), after=b"tokenizer.ggml.tokens")
    error = reason_of(model_copy)
    assert error.reason == "duplicate_token"
    assert f"duplicate token string 'a': ids {first} and {second}" in error.message


@pytest.mark.parametrize("offset, what", [(8, "tensor count"), (16, "metadata count")])
def test_absurd_header_counts(model_copy: Path, offset: int, what: str) -> None:
    patch_at(model_copy, offset, struct.pack("<Q", 10**15))
    error = reason_of(model_copy)
    assert error.reason == "absurd_count"
    assert what in error.message


def test_absurd_array_length(model_copy: Path) -> None:
    key = gguf_string("tokenizer.ggml.tokens")
    header = struct.pack("<II", gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING)
    patch_once(model_copy, struct.pack("<Q", SMALL_SPEC.n_vocab), struct.pack("<Q", 2**40), after=key + header)
    error = reason_of(model_copy)
    assert error.reason == "absurd_count"
    assert "tokenizer.ggml.tokens" in error.message


def test_absurd_string_length(model_copy: Path) -> None:
    patch_once(model_copy, gguf_string("general.name"), struct.pack("<Q", 2**50) + b"general.name")
    error = reason_of(model_copy)
    assert error.reason == "absurd_count"


@pytest.mark.parametrize(
    "key, renamed",
    [
        ("llama.block_count", "llama.block_coun7"),
        ("general.architecture", "general.architectur3"),
        ("llama.attention.layer_norm_rms_epsilon", "llama.attention.layer_norm_rms_epsi1on"),
        ("tokenizer.ggml.model", "tokenizer.ggml.mode1"),
    ],
)
def test_missing_required_key(model_copy: Path, key: str, renamed: str) -> None:
    patch_once(model_copy, gguf_string(key), gguf_string(renamed))
    error = reason_of(model_copy)
    assert error.reason == "missing_key"
    assert key in error.message


def test_token_id_outside_the_vocabulary(model_copy: Path) -> None:
    key = gguf_string("tokenizer.ggml.bos_token_id") + struct.pack("<I", gguf.GGUFValueType.UINT32)
    patch_once(model_copy, struct.pack("<I", BOS_ID), struct.pack("<I", 9999), after=key)
    error = reason_of(model_copy)
    assert error.reason == "malformed"
    assert "9999" in error.message


def test_unknown_tensor_type(model_copy: Path) -> None:
    # token_embd is the first tensor: name, n_dims=2, two dims, then its type.
    entry = gguf_string("token_embd.weight") + struct.pack("<IQQ", 2, SMALL_SPEC.n_embd, SMALL_SPEC.n_vocab)
    patch_once(model_copy, struct.pack("<I", gguf.GGMLQuantizationType.F32), struct.pack("<I", 999), after=entry)
    error = reason_of(model_copy)
    assert error.reason == "malformed"
    assert "unknown ggml type 999" in error.message


# ---------------------------------------------------------------------------
# ingot inspect


def test_cli_inspect_json(small_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingot_main(["inspect", str(small_model), "--json", "--tensors"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["architecture"] == "llama"
    assert out["vocab_size"] == SMALL_SPEC.n_vocab
    assert len(out["tensors"]) == 2 + 9 * SMALL_SPEC.n_layer + 1


def test_cli_inspect_text(small_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingot_main(["inspect", str(small_model), "--tensors"]) == 0
    out = capsys.readouterr().out
    assert "llama" in out
    assert "blk.1.ffn_down.weight" in out


def test_cli_inspect_bad_file_is_one_error_line(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch_at(model_copy, 0, b"XXXX")
    assert ingot_main(["inspect", str(model_copy)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {model_copy}: not a GGUF file")
    assert "Traceback" not in captured.err



def _nested_array_file(path: Path, depth: int) -> Path:
    """A header holding one key: an array of an array of ... `depth` levels, innermost one byte; nothing else."""
    nested = struct.pack("<I", gguf.GGUFValueType.ARRAY)
    for _ in range(depth - 1):
        nested += struct.pack("<I", gguf.GGUFValueType.ARRAY) + struct.pack("<Q", 1)
    nested += struct.pack("<I", gguf.GGUFValueType.UINT8) + struct.pack("<Q", 1) + b"\x00"
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string("hostile.nested") + nested
    path.write_bytes(data + bytes(-len(data) % 32))  # tensor data starts aligned, even when there is none
    return path


def test_deeply_nested_arrays_are_one_clear_error_not_a_recursion_error(tmp_path: Path) -> None:
    # The probe's file: 2000 levels, which recursed into RecursionError (a 3000-line traceback in the CLI).
    path = _nested_array_file(tmp_path / "nested.gguf", 2000)
    started = time.monotonic()
    error = reason_of(path)
    assert error.reason == "malformed"
    assert "'hostile.nested' nests arrays more than 16 levels deep" in error.message
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("depth", [2, 16])
def test_nesting_within_the_bound_is_read(tmp_path: Path, depth: int) -> None:
    # The metadata parses; the file then fails only for lacking general.architecture.
    assert reason_of(_nested_array_file(tmp_path / "nested.gguf", depth)).reason == "missing_key"
