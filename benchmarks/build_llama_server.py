"""Build llama.cpp's `llama-server` from the very llama.cpp that llama-cpp-python 0.3.36 vendors.

    python benchmarks/build_llama_server.py [--jobs 2]

The peer in benchmarks/bench_peers.py must run the same llama.cpp as ingot's
runners, so it is built from llama-cpp-python's own source distribution:

1. `pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36 -d bench-data/peer`
2. unpack it under bench-data/peer/
3. `cmake -B build -DLLAMA_CURL=OFF -DGGML_NATIVE=ON && cmake --build build --target llama-server -j2`
   in its vendor/llama.cpp

Everything stays in the git-ignored bench-data/peer/. Idempotent: an existing
binary is reused (delete bench-data/peer/ to rebuild). Prints the binary's path.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench-data" / "peer"
VERSION = "0.3.36"  # pyproject.toml's pin: the peer must be the runners' llama.cpp
SDIST_GLOB = f"llama[-_]cpp[-_]python-{VERSION}.tar.gz"  # the name's spelling changed across releases
LLAMA_CPP = PEER_DIR / f"llama-cpp-python-{VERSION}" / "vendor" / "llama.cpp"  # unpacked under one fixed name
BINARY = LLAMA_CPP / "build" / "bin" / "llama-server"


def download_sdist() -> Path:
    existing = sorted(PEER_DIR.glob(SDIST_GLOB))
    if existing:
        return existing[0]
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
         f"llama-cpp-python=={VERSION}", "-d", str(PEER_DIR)],
        check=True,
    )  # fmt: skip
    found = sorted(PEER_DIR.glob(SDIST_GLOB))
    if not found:
        raise SystemExit(f"pip download left no {SDIST_GLOB} in {PEER_DIR}")
    return found[0]


def unpack(sdist: Path) -> None:
    if (LLAMA_CPP / "CMakeLists.txt").exists():
        return
    staging = PEER_DIR / "unpacking"
    for leftover in (staging, LLAMA_CPP.parents[1]):  # from an interrupted earlier run
        shutil.rmtree(leftover, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(staging, filter="data")
    (top,) = staging.iterdir()  # an sdist holds one folder, name-version
    top.rename(LLAMA_CPP.parents[1])
    staging.rmdir()
    if not (LLAMA_CPP / "CMakeLists.txt").exists():
        raise SystemExit(f"{sdist.name} has no vendor/llama.cpp/CMakeLists.txt")


def build(jobs: int) -> None:
    subprocess.run(
        ["cmake", "-B", "build", "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=ON", "-DCMAKE_BUILD_TYPE=Release"],
        cwd=LLAMA_CPP, check=True,
    )  # fmt: skip
    subprocess.run(["cmake", "--build", "build", "--target", "llama-server", f"-j{jobs}"], cwd=LLAMA_CPP, check=True)


def ensure_llama_server(jobs: int = 2) -> Path:
    """The path of a built llama-server, building it first when it is missing."""
    if not BINARY.exists():
        unpack(download_sdist())
        build(jobs)
    if not BINARY.exists():
        raise SystemExit(f"the build finished but {BINARY} is missing")
    return BINARY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    args = parser.parse_args(argv)
    print(ensure_llama_server(args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
