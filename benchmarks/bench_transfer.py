"""Push and pull throughput of a 1 GiB package against a loopback registry, next to curl.

    .venv/bin/python benchmarks/bench_transfer.py [--size-mib 1024] [--rounds 3]

Starts a CNCF distribution registry (docker-registry) on a free loopback port
with its storage under ./bench-data (git-ignored), builds a package whose
weight layer is SIZE MiB of random bytes, then alternates, A B A B:

- pull: `ingot` pulling the package into an empty store (every blob hashed
  and verified, written to disk and fsync'd) vs `curl` downloading the same
  blob to /dev/null (the target baseline), and vs the same work done with
  standard tools, `curl URL | tee FILE | sha256sum; sync FILE` (informative);
- push: `ingot` pushing it to a new repository (HEAD, upload session,
  streamed body, closing PUT) vs `curl` doing the POST and one PUT of the file.

Each ingot transfer runs in its own process, which times only the transfer
(not Python start-up) and reports its peak RSS and CPU time. The CPU the
registry spends serving each pull is read from /proc, so the table also shows
how much of the 2 cores a download at curl's pace leaves for hashing and writing. Prints a table with the
median of each side and the ratio ingot/curl (target >= 0.8) and the peak RSS
of the pulls (target < 150 MiB). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from bench_common import process_cpu_seconds  # noqa: E402
from oci_registry_server import find_registry_binary, start_registry

DATA = ROOT / "bench-data" / "transfer"  # its own folder: wiped at start and end
MIB = 1024 * 1024

# Runs in a child process: one push or pull, timed around the call itself.
_DRIVER = r"""
import json, os, resource, sys, time
from ingot.registry.oci import ClientOptions, pull, push
from ingot.registry.store import Store
action, store_root, ref = sys.argv[1:4]
if os.environ.get("BENCH_WITHOUT_FSYNC"):  # --without-fsync: an experiment, never a mode of ingot
    os.fsync = lambda fd: None
    os.posix_fadvise = lambda *args: None
store = Store(store_root)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime
cpu_before, started = cpu(), time.perf_counter()
if action == "pull":
    result = pull(store, ref)
else:
    result = push(store, ref.split("=>")[0], destination=ref.split("=>")[1])
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_before
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "bytes": result.bytes_transferred, "rss_mib": rss_mib}))
"""


def _write_random(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(16 * MIB, left))
            hasher.update(block)
            out.write(block)
            left -= len(block)
    return "sha256:" + hasher.hexdigest()


def _build_package(store_root: Path, ref: str, weights: Path) -> None:
    from ingot.registry import mediatypes as mt
    from ingot.registry.package import canonical_json
    from ingot.registry.reference import Reference
    from ingot.registry.store import Descriptor, Store

    store = Store(store_root)
    layer = store.ingest_file(weights, link=True, media_type=mt.MODEL_WEIGHT_RAW,
                              annotations={mt.ANNOTATION_FILEPATH: "model.gguf"})
    config = store.ingest_bytes(canonical_json({"descriptor": {}, "config": {"format": "gguf"},
                                                "modelfs": {"type": "layers", "diffIds": [layer.digest]}}),
                                media_type=mt.MODEL_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": mt.MODEL_ARTIFACT,
                "config": config.to_json(), "layers": [layer.to_json()]}
    stored = store.ingest_bytes(canonical_json(manifest), media_type=mt.OCI_MANIFEST)
    store.tag(Reference.parse(ref), Descriptor(mt.OCI_MANIFEST, stored.digest, stored.size, {}, mt.MODEL_ARTIFACT))


def _ingot(action: str, store_root: Path, ref: str, *, without_fsync: bool = False) -> dict[str, float]:
    env = {**os.environ, "BENCH_WITHOUT_FSYNC": "1"} if without_fsync else None
    out = subprocess.run([sys.executable, "-c", _DRIVER, action, str(store_root), ref],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _curl_pull(url: str) -> tuple[float, float]:
    """Seconds and curl's CPU seconds for downloading the blob to /dev/null."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", "/dev/null", url], check=True)
    return time.perf_counter() - started, _children_cpu() - cpu_before


def _local_floor(size: int, folder: Path) -> dict[str, float]:
    """CPU seconds per GiB to SHA-256 bytes in memory, and to write them into the page cache (no fsync)."""
    block = os.urandom(16 * MIB)
    blocks = max(size // len(block), 1)
    hasher = hashlib.sha256()
    started = time.process_time()
    for _ in range(blocks):
        hasher.update(block)
    hashing = time.process_time() - started
    path = folder / "page-cache-write.bin"
    started = time.process_time()
    with open(path, "wb", buffering=0) as out:
        for _ in range(blocks):
            out.write(block)
    writing = time.process_time() - started
    path.unlink()
    scale = 1024 * MIB / (blocks * len(block))
    return {"sha256": hashing * scale, "page-cache write": writing * scale}


def _curl_verified_pull(url: str, target: Path) -> float:
    """Download, hash and durably store the blob with standard tools: the work a verified pull does."""
    started = time.perf_counter()
    subprocess.run(f"curl -sSf '{url}' | tee '{target}' | sha256sum > /dev/null && sync '{target}'",
                   shell=True, check=True)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def _curl_push(base: str, repository: str, weights: Path, digest: str) -> float:
    started = time.perf_counter()
    head = subprocess.run(["curl", "-sSf", "-X", "POST", "-D", "-", "-o", "/dev/null",
                           f"{base}/v2/{repository}/blobs/uploads/"], check=True, capture_output=True, text=True)
    location = next(line.split(":", 1)[1].strip() for line in head.stdout.splitlines()
                    if line.lower().startswith("location:"))
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    subprocess.run(["curl", "-sSf", "-o", "/dev/null", "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                    "-T", str(weights), f"{location}{sep}digest={digest}"], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--without-fsync", action="store_true",
                        help="experiment: patch fsync out of the pulling process, to see the pull without the disk")
    args = parser.parse_args()
    binary = find_registry_binary()
    if binary is None or shutil.which("curl") is None:
        print("needs docker-registry and curl", file=sys.stderr)
        return 2
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir(parents=True)
    size = args.size_mib * MIB
    server = start_registry(binary, DATA / "registry")
    try:
        weights = DATA / "weights.bin"
        digest = _write_random(weights, size)
        source = DATA / "source-store"
        ref = f"{server.host}/bench/model:1"
        # Tagged under "localhost:PORT" in the source store: pushes to "127.0.0.1:PORT/..." then find no
        # repository to mount from and really upload (as the first push of a new model does).
        local_ref = ref.replace("127.0.0.1", "localhost", 1)
        _build_package(source, local_ref, weights)
        _ingot("push", source, f"{local_ref}=>{ref}")  # the registry holds the package for the pulls
        blob_url = f"{server.url}/v2/bench/model/blobs/{digest}"

        pulls: dict[str, list[float]] = {"ingot": [], "curl": [], "curl+sha256+disk": []}
        pushes: dict[str, list[float]] = {"ingot": [], "curl": []}
        rss: list[float] = []
        # CPU seconds per pull: the client's own, and the registry's while serving it.
        cpu: dict[str, list[tuple[float, float]]] = {"ingot": [], "curl": []}
        registry_pid = server.process.pid
        for round_ in range(args.rounds):
            target = DATA / f"pull-store-{round_}"
            registry_before = process_cpu_seconds(registry_pid)
            measured = _ingot("pull", target, ref, without_fsync=args.without_fsync)
            cpu["ingot"].append((measured["cpu"], process_cpu_seconds(registry_pid) - registry_before))
            assert measured["bytes"] >= size, measured
            pulls["ingot"].append(size / measured["seconds"])
            rss.append(measured["rss_mib"])
            shutil.rmtree(target)
            registry_before = process_cpu_seconds(registry_pid)
            seconds, curl_cpu = _curl_pull(blob_url)
            cpu["curl"].append((curl_cpu, process_cpu_seconds(registry_pid) - registry_before))
            pulls["curl"].append(size / seconds)
            pulls["curl+sha256+disk"].append(size / _curl_verified_pull(blob_url, DATA / "curl-copy.bin"))

            measured = _ingot("push", source, f"{local_ref}=>{server.host}/bench/push-{round_}:1")
            assert measured["bytes"] >= size, measured
            pushes["ingot"].append(size / measured["seconds"])
            pushes["curl"].append(size / _curl_push(server.url, f"bench/curl-{round_}", weights, digest))
            print(f"round {round_ + 1}/{args.rounds}: pull ingot {pulls['ingot'][-1] / MIB:.0f} MiB/s, "
                  f"curl {pulls['curl'][-1] / MIB:.0f} MiB/s, "
                  f"curl+sha256+disk {pulls['curl+sha256+disk'][-1] / MIB:.0f} MiB/s; "
                  f"push ingot {pushes['ingot'][-1] / MIB:.0f} MiB/s, "
                  f"curl {pushes['curl'][-1] / MIB:.0f} MiB/s; pull peak RSS {rss[-1]:.0f} MiB", flush=True)

        print()
        print(f"{args.size_mib} MiB blob, loopback registry, {args.rounds} rounds (A B A B), medians")
        print(f"{'transfer':24} {'ingot MiB/s':>12} {'baseline MiB/s':>15} {'ratio':>7} {'target':>8}")
        rows = (("pull vs curl >/dev/null", pulls, "curl", ">= 0.80"),
                ("pull vs curl+sha256+disk", pulls, "curl+sha256+disk", "(info)"),
                ("push vs curl -T", pushes, "curl", ">= 0.80"))
        for name, runs, baseline, target in rows:
            a, b = statistics.median(runs["ingot"]) / MIB, statistics.median(runs[baseline]) / MIB
            print(f"{name:24} {a:12.0f} {b:15.0f} {a / b:7.2f} {target:>8}")
        print(f"{'pull peak RSS':24} {max(rss):11.0f}M {'':>15} {'':>7} {'< 150M':>8}")
        if args.without_fsync:
            print("(pulls ran WITHOUT fsync: an experiment, not what ingot does)")
        print()
        print(f"CPU seconds per GiB pulled (medians; the machine has {os.cpu_count()} CPUs)")
        print(f"{'client':24} {'client':>8} {'registry':>9} {'both':>7}")
        for name, samples in cpu.items():
            per_gib = [(c * 1024 / args.size_mib, r * 1024 / args.size_mib) for c, r in samples]
            client = statistics.median(c for c, _ in per_gib)
            registry = statistics.median(r for _, r in per_gib)
            both = statistics.median(c + r for c, r in per_gib)
            print(f"{name:24} {client:8.2f} {registry:9.2f} {both:7.2f}")
        floor = _local_floor(size, DATA)
        print("CPU seconds per GiB, no network: " + ", ".join(f"{k} {v:.2f}" for k, v in floor.items()))
    finally:
        server.stop()
        shutil.rmtree(DATA, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
