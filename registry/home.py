"""Where ingot keeps its files: `$INGOT_HOME` (default `~/.ingot`) and the paths inside it.

Layout::

    $INGOT_HOME/
      models/              the local store, an OCI image layout (see store.py)
        oci-layout
        index.json         one manifest descriptor per tag
        blobs/sha256/<hex>
        blobs/.partial/    resumable downloads (issue 3)
        .links/            size+mtime of blobs that share an inode with a user's file
        .tmp/              scratch space on the store's filesystem (quantize output)
        .lock .gc.lock     flock(2) files

Environment is read once, where a command starts, and passed down as values.

The folder is created mode 0700: the models, the daemon's socket and the
watcher's state are the user's alone. A folder that already exists keeps its
mode, which is how to share one (create it first: `install -d -m 0750 -g
models ~/.ingot`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOME_ENV", "REGISTRY_ENV", "IngotHome", "default_registry"]

HOME_ENV = "INGOT_HOME"
REGISTRY_ENV = "INGOT_REGISTRY"
DEFAULT_HOME = "~/.ingot"


@dataclass(frozen=True)
class IngotHome:
    """The root folder of one ingot installation and the well-known paths inside it."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngotHome:
        """`$INGOT_HOME` if set and non-empty, else `~/.ingot`; always absolute."""
        env = os.environ if env is None else env
        raw = env.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(raw).expanduser().absolute())

    def ensure(self) -> Path:
        """Create the home folder if it is missing (mode 0700, see above); return it."""
        try:
            self.root.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(mode=0o700, exist_ok=True)
        return self.root

    @property
    def models(self) -> Path:
        """The OCI image layout that holds every local package."""
        return self.root / "models"

    def path(self, *parts: str) -> Path:
        """A path under the home folder, for components that keep their own files there."""
        return self.root.joinpath(*parts)


def default_registry(env: Mapping[str, str] | None = None) -> str | None:
    """The registry host used by push/pull for references that name none (`$INGOT_REGISTRY`)."""
    env = os.environ if env is None else env
    value = (env.get(REGISTRY_ENV) or "").strip()
    return value or None
