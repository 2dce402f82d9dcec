"""The synthetic GGUF generator: determinism, vocabulary, shapes, and counting models under real llama.cpp."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import llama_cpp
import pytest

from ingot.cli.cmd_synth import TEMPLATE_NAMES, spec_from_args
from ingot.cli.main import build_parser
from ingot.cli.main import main as ingot_main
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.synthetic import (
    BOS_ID,
    CHAT_TEMPLATES,
    COUNT_START,
    EOS_ID,
    FIRST_PIECE_ID,
    MIN_VOCAB,
    UNK_ID,
    SyntheticSpec,
    bench_spec,
    build_vocab,
    counting_range,
    counting_sequence,
    counting_successor,
    write_synthetic_gguf,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_spec_gives_the_same_bytes(tmp_path: Path) -> None:
    spec = SyntheticSpec(dtype="f16", counting=False, chat_template=CHAT_TEMPLATES["chatml"])
    first = write_synthetic_gguf(tmp_path / "a.gguf", spec)
    second = write_synthetic_gguf(tmp_path / "b.gguf", spec)
    other_seed = write_synthetic_gguf(tmp_path / "c.gguf", SyntheticSpec(dtype="f16", seed=1))
    assert sha256(first) == sha256(second)
    assert sha256(first) != sha256(other_seed)


def test_write_is_atomic_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = write_synthetic_gguf(tmp_path / "model.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
    assert target.stat().st_mode & 0o044  # readable by others, like any file the user writes
    with pytest.raises(FileNotFoundError):
        write_synthetic_gguf(tmp_path / "missing" / "model.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_vocabulary_is_unique_and_typed() -> None:
    vocab = build_vocab(32000)
    assert len(vocab.tokens) == len(vocab.scores) == len(vocab.token_types) == 32000
    assert len(set(vocab.tokens)) == 32000
    assert vocab.tokens[:3] == ("<unk>", "<s>", "</s>")
    assert (vocab.tokens[UNK_ID], vocab.tokens[BOS_ID], vocab.tokens[EOS_ID]) == ("<unk>", "<s>", "</s>")
    assert vocab.tokens[3] == "<0x00>" and vocab.tokens[FIRST_PIECE_ID - 1] == "<0xFF>"
    assert vocab.token_types[:3] == (2, 3, 3)  # unknown, control, control
    assert set(vocab.token_types[3:FIRST_PIECE_ID]) == {6}  # byte
    assert set(vocab.token_types[FIRST_PIECE_ID:]) == {1}  # normal
    pieces = vocab.scores[FIRST_PIECE_ID:]
    assert all(score < 0 for score in pieces)
    assert list(pieces) == sorted(pieces, reverse=True)


def test_vocabulary_prefixes_make_words_reachable() -> None:
    tokens = set(build_vocab(1000).tokens)
    assert {"\u2581t", "\u2581th", "\u2581the"} <= tokens


def test_file_matches_the_spec(tmp_path: Path) -> None:
    spec = SyntheticSpec(n_embd=128, n_layer=3, n_head=8, n_head_kv=2, n_vocab=700, n_ctx=512, dtype="f16")
    info = inspect_gguf(write_synthetic_gguf(tmp_path / "m.gguf", spec))
    assert (info.embedding_length, info.block_count, info.head_count, info.head_count_kv) == (128, 3, 8, 2)
    assert (info.vocab_size, info.context_length, info.feed_forward_length) == (700, 512, spec.n_ff)
    assert info.metadata["llama.rope.dimension_count"] == 16
    assert info.metadata["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    shapes = {t.name: t.shape for t in info.tensors}
    assert shapes["token_embd.weight"] == (128, 700)  # ggml order: ne0 is the row width
    assert shapes["blk.2.attn_k.weight"] == (128, 32)
    assert shapes["blk.0.ffn_down.weight"] == (spec.n_ff, 128)
    assert shapes["output.weight"] == (128, 700)


def test_defaults_resolve_like_llama() -> None:
    spec = SyntheticSpec(n_embd=256, n_head=8)
    assert spec.n_head_kv == 8
    assert spec.n_ff == 768  # 8/3 * 256 rounded up to a multiple of 256
    assert SyntheticSpec(n_embd=64).n_ff == 192
    bench = bench_spec()
    assert (bench.n_embd, bench.n_layer, bench.n_vocab, bench.dtype) == (1024, 16, 32000, "f16")
    assert bench.n_ff is not None and bench.n_ff % 256 == 0


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"n_embd": 60, "n_head": 8}, "not divisible by n_head"),
        ({"n_head": 4, "n_head_kv": 3}, "not divisible by n_head_kv"),
        ({"n_vocab": 100}, f"n_vocab must be at least {MIN_VOCAB}"),
        ({"dtype": "q4"}, "dtype must be"),
        ({"n_layer": 0}, "n_layer must be a positive integer"),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SyntheticSpec(**kwargs)  # type: ignore[arg-type]


def test_counting_helpers() -> None:
    spec = SyntheticSpec(n_embd=64, n_vocab=512)
    ids = counting_range(spec)
    assert ids == range(COUNT_START, COUNT_START + 64)
    assert counting_successor(spec, ids.start) == ids.start + 1
    assert counting_successor(spec, ids.stop - 1) == ids.start  # wraps inside the range
    assert all(counting_successor(spec, t) in ids for t in range(spec.n_vocab))
    assert counting_sequence(spec, ids.stop - 2, 3) == [ids.stop - 1, ids.start, ids.start + 1]
    small_vocab = SyntheticSpec(n_embd=256, n_vocab=400)
    assert counting_range(small_vocab) == range(COUNT_START, 400)


def greedy(llm: llama_cpp.Llama, prompt: list[int], n: int) -> list[int]:
    llm.reset()
    out: list[int] = []
    for token in llm.generate(prompt, temp=0.0, top_k=1):
        out.append(token)
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize(
    "spec", [SyntheticSpec(counting=True), SyntheticSpec(counting=True, dtype="f16", n_embd=128, n_vocab=1000)]
)
def test_counting_model_counts_under_llama_cpp(tmp_path: Path, spec: SyntheticSpec) -> None:
    path = write_synthetic_gguf(tmp_path / "counting.gguf", spec)
    ids = counting_range(spec)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_threads=2, verbose=False)
    try:
        for last in (ids.start, ids.start + 7, ids.stop - 3, BOS_ID, 100, ids.stop + 5):
            produced = greedy(llm, [BOS_ID, 300, last], 10)
            assert produced == counting_sequence(spec, last, 10), f"after token {last}"
            assert all(token in ids for token in produced)
        text_prompt = llm.tokenize(b"the city was", add_bos=True)
        assert greedy(llm, text_prompt, 5) == counting_sequence(spec, text_prompt[-1], 5)
    finally:
        llm.close()


# ---------------------------------------------------------------------------
# ingot synth


def test_cli_template_names_match_the_library() -> None:
    assert TEMPLATE_NAMES == tuple(CHAT_TEMPLATES)


def test_cli_synth_bench_options_start_from_the_bench_shape() -> None:
    args = build_parser().parse_args(["synth", "x.gguf", "--bench", "--layers", "2", "--embd", "512"])
    spec = spec_from_args(args)
    assert (spec.n_layer, spec.n_embd, spec.n_vocab, spec.dtype, spec.name) == (2, 512, 32000, "f16", "ingot-bench")
    assert spec.n_ff == SyntheticSpec(n_embd=512).n_ff  # follows the new width, not the bench one
    assert spec_from_args(build_parser().parse_args(["synth", "x.gguf", "--bench"])) == bench_spec()


def test_cli_synth_counting_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.gguf"
    assert ingot_main(["synth", str(out), "--counting", "--embd", "32", "--heads", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    spec = SyntheticSpec(n_embd=32, n_head=2, counting=True)
    assert result["counting_range"] == [counting_range(spec).start, counting_range(spec).stop]
    assert result["spec"]["n_ff"] == spec.n_ff
    assert sha256(out) == sha256(write_synthetic_gguf(tmp_path / "same.gguf", spec))


def test_cli_synth_chat_template_by_name_and_file(tmp_path: Path) -> None:
    assert ingot_main(["synth", str(tmp_path / "a.gguf"), "--chat-template", "chatml"]) == 0
    assert inspect_gguf(tmp_path / "a.gguf").chat_template == CHAT_TEMPLATES["chatml"]
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0]['content'] }}", encoding="utf-8")
    assert ingot_main(["synth", str(tmp_path / "b.gguf"), "--chat-template", str(template)]) == 0
    assert inspect_gguf(tmp_path / "b.gguf").chat_template == "{{ messages[0]['content'] }}"


def test_cli_synth_quantized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q.gguf"
    assert ingot_main(["synth", str(out), "--f16", "--quantize", "q8_0"]) == 0
    assert inspect_gguf(out).file_type == "Q8_0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.gguf"]
    assert "Q8_0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--chat-template", "nonesuch"], "neither a known template"),
        (["--embd", "60", "--heads", "8"], "not divisible by n_head"),
        (["--quantize", "q9_z"], "unknown quantization type 'q9_z'"),
        (["--quantize", "q4_k_m"], "multiple of 256"),
    ],
)
def test_cli_synth_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert ingot_main(["synth", str(tmp_path / "x.gguf"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
