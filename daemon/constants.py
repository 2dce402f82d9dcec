"""Names and choices shared by the daemon and the CLI, kept free of heavy imports.

`ingot serve` builds its argument parser from these on every `ingot`
invocation, so they live apart from the gRPC and logging code that uses them.
"""

from __future__ import annotations

__all__ = ["LOG_FORMATS", "TOKEN_ENV"]

# Environment variable holding the bearer token for the daemon's TCP listener.
TOKEN_ENV = "INGOT_TOKEN"
# Values of `ingot serve --log-format`.
LOG_FORMATS = ("text", "json")
