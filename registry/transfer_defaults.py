"""Defaults of registry transfers that the command line shows before any transfer code is loaded.

They live outside `ingot.registry.oci` on purpose: importing anything from
that package runs its `__init__`, which loads oras, requests and gguf, and
`ingot --help` must not pay for that just to print `(default 4)`.
`ingot.registry.oci.options` re-exports them.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PARALLEL"]

# Blobs pushed or pulled at once.
DEFAULT_PARALLEL = 4
