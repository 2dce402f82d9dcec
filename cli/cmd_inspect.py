"""`ingot inspect FILE.gguf`: what a GGUF file holds, read from its header without loading weights."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ingot.cli.output import human_size, print_json, print_table, user_errors

if TYPE_CHECKING:
    from ingot.registry.gguf_info import GGUFInfo


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show what a GGUF model file holds (header only, no weights loaded)",
        description=(
            "Read a GGUF file's header, metadata and tensor table without loading its weights, and "
            "check it is safe to hand to llama.cpp (magic, version, truncation, counts, duplicate "
            "tokens). Exits 1 with one error line when it is not."
        ),
    )
    parser.add_argument("file", metavar="FILE.gguf", help="the GGUF file to inspect")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--tensors", action="store_true", help="also list every tensor (name, type, shape, size)")
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    from ingot.registry.gguf_info import inspect_gguf

    info = inspect_gguf(args.file)
    if args.json:
        print_json(info.to_json(tensors=args.tensors))
        return 0
    rows = summary_rows(info)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}   {value}")
    if args.tensors:
        print()
        print_table(
            ("name", "type", "shape", "size", "offset"),
            (
                (t.name, t.ggml_type, " x ".join(str(d) for d in t.shape), human_size(t.n_bytes), t.offset)
                for t in info.tensors
            ),
        )
    sys.stdout.flush()
    return 0


def human_count(n: int) -> str:
    """A parameter count the way model cards write it: 268.4M, 7.2B."""
    for threshold, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= threshold:
            return f"{n / threshold:.1f}{suffix}"
    return str(n)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def summary_rows(info: GGUFInfo) -> list[tuple[str, str]]:
    """The human summary of a `GGUFInfo`, as (label, value) rows."""
    file_type = _or_dash(info.file_type)
    if info.quantization:
        file_type += f" (most weights {info.quantization})"
    output = human_size(info.output_bytes) + (" (tied to the embedding)" if info.tied_embeddings else "")
    weights = (
        f"{human_size(sum(info.layer_bytes))} in {len(info.layer_bytes)} layers "
        f"(largest {human_size(max(info.layer_bytes, default=0))}), "
        f"token embedding {human_size(info.token_embd_bytes)}, output {output}"
    )
    if info.other_bytes:
        weights += f", other {human_size(info.other_bytes)}"
    return [
        ("file", f"{info.path} ({human_size(info.file_size)}, GGUF v{info.version})"),
        ("name", _or_dash(info.name)),
        ("architecture", info.architecture),
        ("parameters", f"{human_count(info.parameter_count)} ({info.parameter_count:,})"),
        ("file type", file_type),
        ("context length", _or_dash(info.context_length)),
        (
            "layers",
            f"{_or_dash(info.block_count)} (embedding {_or_dash(info.embedding_length)}, "
            f"feed-forward {_or_dash(info.feed_forward_length)})",
        ),
        (
            "attention",
            f"{_or_dash(info.head_count)} heads, {_or_dash(info.head_count_kv)} KV heads, "
            f"key/value size {_or_dash(info.key_length)}/{_or_dash(info.value_length)}",
        ),
        (
            "vocabulary",
            f"{_or_dash(info.vocab_size)} tokens ({_or_dash(info.tokenizer_model)} tokenizer), "
            f"bos {_or_dash(info.bos_token_id)}, eos {_or_dash(info.eos_token_id)}",
        ),
        ("chat template", "none" if info.chat_template is None else f"yes ({len(info.chat_template):,} characters)"),
        ("weights", weights),
        ("tensors", f"{len(info.tensors)}, data from byte {info.tensor_data_offset:,}"),
    ]
