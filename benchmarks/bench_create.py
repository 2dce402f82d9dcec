"""Benchmark `ingot create` from a ~1 GiB GGUF against `sha256sum` of the same file, and its disk cost.

    python benchmarks/bench_create.py [--out-dir bench-data] [--rounds 3] [--copy]

Writes a synthetic F32 llama GGUF of ~1.07 GB into the output folder
(git-ignored `bench-data/` at the repository root; reused when present; the
same spec always gives the same bytes), then alternates A B A B: A is
`sha256sum FILE`, B builds a package from it (`build_package`, in process,
into a fresh INGOT_HOME on the same filesystem), C is `openssl dgst -sha256`
(SHA CPU extensions, like Python's hashlib; coreutils' sha256sum may lack them,
which makes B/A flattering, so B/C is printed too). One untimed `sha256sum`
first puts the file in the page cache, so both read from memory. A last
column times the whole `ingot create` command (Python start-up included).

Printed: each round's seconds and the B/A ratio, the median ratio, and the
disk cost of one package: blocks the store allocated that the source file
does not already own (0 with a hardlink or reflink), plus the filesystem's
used-space delta (noisy on a shared machine). The issue's bar: ratio <= ~1.3,
disk cost ~0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ingot.modelfile import parse
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "bench-data"
# 1024 wide, 18 layers, 32k vocabulary, F32: ~268M parameters, ~1.07 GB.
SPEC = SyntheticSpec(n_embd=1024, n_layer=18, n_head=16, n_head_kv=4, n_vocab=32000, n_ctx=4096, dtype="f32",
                     name="ingot-bench-1g")


def _sha256sum(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _openssl(path: Path) -> float | None:
    """`openssl dgst -sha256`: uses the CPU's SHA extensions, as Python's hashlib does (coreutils may not)."""
    if shutil.which("openssl") is None:
        return None
    started = time.perf_counter()
    subprocess.run(["openssl", "dgst", "-sha256", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _new_blocks(home: Path, source: Path) -> int:
    """Bytes allocated under `home` by files that do not share the source's inode."""
    source_ino = source.stat().st_ino
    total = 0
    for root, _, files in os.walk(home):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if st.st_ino != source_ino:
                total += st.st_blocks * 512
    return total


def _create(home: Path, folder: Path, link: bool) -> tuple[float, int, int, bool]:
    """Build once into a fresh `home`; (seconds, new bytes on disk, df delta, weights linked?)."""
    shutil.rmtree(home, ignore_errors=True)
    store = Store(home / "models")
    modelfile = parse("FROM ./bench-1g.gguf\nPARAMETER temperature 0.7\n", filename="Modelfile")
    before = shutil.disk_usage(home).used
    started = time.perf_counter()
    descriptor = build_package(store, modelfile, folder, ref=Reference.parse("bench"), link=link, env={})
    seconds = time.perf_counter() - started
    used = shutil.disk_usage(home).used - before
    source = folder / "bench-1g.gguf"
    manifest = store.read_json(descriptor.digest)
    weights = store.blob_path(manifest["layers"][0]["digest"])
    linked = weights.stat().st_ino == source.stat().st_ino
    return seconds, _new_blocks(home, source), used, linked


def _cli_create(home: Path, folder: Path, link: bool) -> float:
    shutil.rmtree(home, ignore_errors=True)
    (folder / "Modelfile").write_text("FROM ./bench-1g.gguf\nPARAMETER temperature 0.7\n")
    command = [str(Path(sys.executable).parent / "ingot"), "create", "bench", "-f", str(folder / "Modelfile")]
    if not link:
        command.append("--copy")
    env = {**os.environ, "INGOT_HOME": str(home)}
    env.pop("SOURCE_DATE_EPOCH", None)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"data folder (default {DEFAULT_OUT})")
    parser.add_argument("--rounds", type=int, default=3, help="A B pairs to run (default 3)")
    parser.add_argument("--copy", action="store_true", help="measure `create --copy` (no hardlink/reflink)")
    args = parser.parse_args(argv)

    folder = args.out_dir / "create"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "bench-1g.gguf"
    if not source.exists():
        started = time.perf_counter()
        write_synthetic_gguf(source, SPEC)
        print(f"wrote {source} ({source.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f}s")
    size = source.stat().st_size
    home = args.out_dir / "create-home"
    link = not args.copy

    _sha256sum(source)  # warm the page cache
    rows = []
    for round_ in range(1, args.rounds + 1):
        a = _sha256sum(source)
        b, new_bytes, df_delta, linked = _create(home, folder, link)
        c = _openssl(source)
        rows.append((round_, a, b, c, new_bytes, df_delta, linked))
    cli = _cli_create(home, folder, link)
    cli_a = _sha256sum(source)
    shutil.rmtree(home, ignore_errors=True)

    print(f"file: {size / 1e9:.2f} GB ({size / 2**30:.2f} GiB), mode: {'copy' if args.copy else 'link'}")
    print(f"{'round':>5} {'sha256sum (s)':>14} {'create (s)':>11} {'openssl (s)':>12} {'B/A':>5} {'B/C':>5} "
          f"{'new disk (MB)':>14} {'df delta (MB)':>14} {'weights':>8}")
    for round_, a, b, c, new_bytes, df_delta, linked in rows:
        c_text = f"{c:>12.2f}" if c else f"{'-':>12}"
        bc = f"{b / c:>5.2f}" if c else f"{'-':>5}"
        print(f"{round_:>5} {a:>14.2f} {b:>11.2f} {c_text} {b / a:>5.2f} {bc} {new_bytes / 1e6:>14.2f} "
              f"{df_delta / 1e6:>14.1f} {'shared' if linked else 'copied':>8}")
    print(f"median create/sha256sum ratio (B/A): {statistics.median(b / a for _, a, b, *_ in rows):.2f}")
    if all(c for _, _, _, c, *_ in rows):
        print(f"median create/openssl-dgst ratio (B/C): {statistics.median(b / c for _, _, b, c, *_ in rows):.2f}")
    print(f"`ingot create` command end to end: {cli:.2f}s (sha256sum right after: {cli_a:.2f}s, "
          f"ratio {cli / cli_a:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
