"""Make the benchmark model: a synthetic 1024-wide, 16-layer, 32k-vocabulary llama, F16 then Q4_K_M.

    python benchmarks/make_bench_model.py [--out-dir bench-data] [--force]

Writes ``bench-f16.gguf`` and ``bench-q4_k_m.gguf`` (~150 MB) into the
output folder (git-ignored ``bench-data/`` at the repository root by default)
and prints a table: file, size, seconds to make, seconds to inspect. Existing
files are reused unless ``--force``; the same spec always gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.quantize import quantize_gguf
from ingot.registry.synthetic import bench_spec, write_synthetic_gguf

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "bench-data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="rebuild files that already exist")
    parser.add_argument("--threads", type=int, default=None, help="quantization threads (default: all cores)")
    args = parser.parse_args(argv)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    f16 = args.out_dir / "bench-f16.gguf"
    q4 = args.out_dir / "bench-q4_k_m.gguf"
    rows: list[tuple[str, int, float | None, float]] = []

    made: float | None = None
    if args.force or not f16.exists():
        started = time.perf_counter()
        write_synthetic_gguf(f16, bench_spec())
        made = time.perf_counter() - started
    rows.append(_row(f16, made))

    made = None
    if args.force or not q4.exists():
        started = time.perf_counter()
        quantize_gguf(f16, q4, "q4_k_m", threads=args.threads, progress=_print_progress)
        print(file=sys.stderr)
        made = time.perf_counter() - started
    rows.append(_row(q4, made))

    print(f"{'file':<40} {'size':>10} {'made (s)':>9} {'inspect (s)':>12}")
    for name, size, made_s, inspect_s in rows:
        made_text = "reused" if made_s is None else f"{made_s:.1f}"
        print(f"{name:<40} {size / 1e6:>7.1f} MB {made_text:>9} {inspect_s:>12.3f}")
    return 0


def _row(path: Path, made: float | None) -> tuple[str, int, float | None, float]:
    started = time.perf_counter()
    info = inspect_gguf(path)
    return str(path), info.file_size, made, time.perf_counter() - started


def _print_progress(fraction: float) -> None:
    print(f"\rquantizing to Q4_K_M: {fraction:6.1%}", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
