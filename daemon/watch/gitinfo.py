"""Where a build came from, when the watched folder is a git checkout: commit and repository URL.

Read with the git command line (`git -C DIR rev-parse HEAD`, `git -C DIR
config remote.origin.url`), the same answers a user gets in a terminal.
A folder that is not a checkout, or a machine without git, gives no
annotations rather than an error. Credentials embedded in an http(s) remote
URL (`https://user:token@host/...`) are removed: the URL ends up in pushed
manifests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ingot.registry import mediatypes as mt

__all__ = ["git_annotations", "public_url"]

_TIMEOUT_S = 10.0


def _git(folder: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    value = completed.stdout.strip()
    return value or None


def public_url(url: str) -> str:
    """`url` without user name or password when it is an http(s) URL; other forms as they are."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def git_annotations(folder: Path) -> dict[str, str]:
    """`org.opencontainers.image.revision` and `.source` for a folder inside a git checkout, else {}."""
    revision = _git(folder, "rev-parse", "HEAD")
    if revision is None:
        return {}
    annotations = {mt.ANNOTATION_REVISION: revision}
    url = _git(folder, "config", "remote.origin.url")
    if url:
        annotations[mt.ANNOTATION_SOURCE] = public_url(url)
    return annotations
