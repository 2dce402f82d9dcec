"""`ingot synth OUT.gguf`: write a small synthetic llama model, for demos, tests and benchmarks offline."""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingot.cli.output import human_size, print_json, user_errors

if TYPE_CHECKING:
    from ingot.registry.synthetic import SyntheticSpec

# The names in ingot.registry.synthetic.CHAT_TEMPLATES (a test keeps them equal),
# spelled out so `ingot --help` need not import numpy and gguf.
TEMPLATE_NAMES = ("chatml", "llama2")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic llama GGUF model (random or counting weights)",
        description=(
            "Write a small llama-architecture GGUF with random weights: the compute and memory of a real "
            "model of that shape, without downloading one. --counting makes a model whose greedy output "
            "counts upward through a range of token ids, for exact tests. --bench starts from the "
            "benchmark shape (1024 wide, 16 layers, 32k vocabulary, f16)."
        ),
    )
    parser.add_argument("out", metavar="OUT.gguf", help="where to write the model")
    parser.add_argument("--embd", type=int, metavar="N", help="embedding width (default 64)")
    parser.add_argument("--layers", type=int, metavar="N", help="number of transformer blocks (default 2)")
    parser.add_argument("--heads", type=int, metavar="N", help="attention heads (default 4)")
    parser.add_argument("--kv-heads", type=int, metavar="N", help="key/value heads (default: same as --heads)")
    parser.add_argument("--ff", type=int, metavar="N", help="feed-forward width (default ~8/3 x embd)")
    parser.add_argument("--vocab", type=int, metavar="N", help="vocabulary size (default 512)")
    parser.add_argument("--ctx", type=int, metavar="N", help="training context length (default 2048)")
    parser.add_argument("--f16", action="store_true", default=None, help="store weights as F16 (default F32)")
    parser.add_argument("--counting", action="store_true", default=None, help="weights that count token ids upward")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (default 0)")
    parser.add_argument("--name", help="general.name written into the file")
    parser.add_argument(
        "--chat-template",
        metavar="NAME|FILE",
        help=f"embed a Jinja chat template: one of {', '.join(TEMPLATE_NAMES)}, or a file holding one",
    )
    parser.add_argument(
        "--quantize", metavar="TYPE", help="quantize the result, e.g. q4_k_m, q8_0 (K-quants need widths of 256k)"
    )
    parser.add_argument("--bench", action="store_true", help="start from the benchmark model's shape")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


_SPEC_OPTIONS = {
    "embd": "n_embd",
    "layers": "n_layer",
    "heads": "n_head",
    "kv_heads": "n_head_kv",
    "ff": "n_ff",
    "vocab": "n_vocab",
    "ctx": "n_ctx",
    "counting": "counting",
    "seed": "seed",
    "name": "name",
}


class UsageError(ValueError):
    """A bad combination of options."""


def spec_from_args(args: argparse.Namespace) -> SyntheticSpec:
    from ingot.registry.synthetic import SyntheticSpec, bench_spec

    base = bench_spec() if args.bench else SyntheticSpec()
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    # Derived sizes follow the new shape unless given explicitly.
    if args.embd is not None and args.ff is None:
        fields["n_ff"] = None
    if args.heads is not None and args.kv_heads is None:
        fields["n_head_kv"] = None
    for option, field_name in _SPEC_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            fields[field_name] = value
    if args.f16:
        fields["dtype"] = "f16"
    if args.chat_template is not None:
        fields["chat_template"] = load_chat_template(args.chat_template)
    try:
        return SyntheticSpec(**fields)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def load_chat_template(value: str) -> str:
    from ingot.registry.synthetic import CHAT_TEMPLATES

    if value in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[value]
    path = Path(value).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--chat-template: cannot read {path}: {exc}") from None
    raise UsageError(
        f"--chat-template: {value!r} is neither a known template ({', '.join(CHAT_TEMPLATES)}) nor an existing file"
    )


@user_errors(UsageError)
def run(args: argparse.Namespace) -> int:
    # Imported here so `ingot --help` does not pay for the gguf/numpy imports.
    from ingot.registry.gguf_info import inspect_gguf
    from ingot.registry.quantize import parse_quant_type, quantize_gguf
    from ingot.registry.synthetic import counting_range, write_synthetic_gguf

    out = Path(args.out)
    spec = spec_from_args(args)
    quant = parse_quant_type(args.quantize) if args.quantize else None
    if not out.parent.is_dir():
        raise UsageError(f"{out}: folder {out.parent} does not exist")
    if quant is None:
        write_synthetic_gguf(out, spec)
    else:
        unquantized = out.with_name(f".{out.name}.{secrets.token_hex(6)}.unquantized")
        try:
            write_synthetic_gguf(unquantized, spec)
            with _progress(f"quantizing to {quant.name}", quiet=args.json) as report:
                quantize_gguf(unquantized, out, quant.name, progress=report)
        finally:
            unquantized.unlink(missing_ok=True)
    info = inspect_gguf(out)
    ids = counting_range(spec) if spec.counting else None
    if args.json:
        print_json(
            {
                "path": str(out),
                "file_size": info.file_size,
                "file_type": info.file_type,
                "parameter_count": info.parameter_count,
                "spec": dataclasses.asdict(spec),
                "counting_range": [ids.start, ids.stop] if ids else None,
            }
        )
        return 0
    print(f"wrote {out} ({human_size(info.file_size)}, {info.file_type}, {info.parameter_count:,} parameters)")
    if ids:
        print(f"counting model: greedy decoding counts through token ids {ids.start}..{ids.stop - 1}, then wraps")
    return 0


@contextmanager
def _progress(label: str, *, quiet: bool) -> Iterator[Callable[[float], None] | None]:
    if quiet or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    with Progress(
        TextColumn(label), BarColumn(), TaskProgressColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)
