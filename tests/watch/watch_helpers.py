"""Helpers for the watcher tests: model folders on disk, counting what passes did, registry lookups."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import requests

from ingot.daemon.watch import ReconcileReport, Watcher
from ingot.registry import mediatypes as mt

WatcherFactory = Callable[..., Watcher]

# Old enough that the digest cache trusts it at once (see inputs._RACY_WINDOW_NS).
SETTLED_AGE_S = 3600


def settle(path: Path) -> None:
    """Date a file an hour back, like a weight file checked out long ago."""
    then = time.time() - SETTLED_AGE_S
    os.utime(path, (then, then))


def add_model(tree: Path, folder: str, gguf: Path, body: str = "", *, modelfile: str = "Modelfile") -> Path:
    """`tree/folder/Modelfile` (or another file name) using a copy of `gguf` as weights; returns the Modelfile."""
    target = tree / folder
    target.mkdir(parents=True, exist_ok=True)
    weights = target / "model.gguf"
    if not weights.exists():
        shutil.copyfile(gguf, weights)
        settle(weights)
    path = target / modelfile
    path.write_text(f"FROM ./model.gguf\n{body}")
    return path


def builds_per_model(reports: Iterable[ReconcileReport]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for report in reports:
        counts.update(report.built)
    return counts


def reports_after(watcher: Watcher, seq: int) -> list[ReconcileReport]:
    return [e for e in watcher.events if isinstance(e, ReconcileReport) and e.seq > seq]


def wait_built(watcher: Watcher, keys: Iterable[str], *, after: int, timeout: float = 60.0) -> list[ReconcileReport]:
    """Wait for passes after seq `after` until every model in `keys` was built; return those passes."""
    wanted = set(keys)
    seen: list[ReconcileReport] = []
    while not wanted <= set(builds_per_model(seen)):
        last = seen[-1].seq if seen else after
        seen.append(watcher.wait_for(ReconcileReport, after=last, timeout=timeout))
    return seen


def settled_pass(watcher: Watcher) -> ReconcileReport:
    """Ask for a full pass and return its report: every file event before this call is behind us."""
    mark = watcher.last_seq
    watcher.request_pass()
    return watcher.wait_for(ReconcileReport, lambda r: r.trigger == "requested", after=mark)


def registry_digest(registry_url: str, repository: str, tag: str) -> str | None:
    """The manifest digest a registry serves for repository:tag, or None (404)."""
    reply = requests.head(
        f"{registry_url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": mt.OCI_MANIFEST},
        timeout=10,
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return reply.headers["Docker-Content-Digest"]
