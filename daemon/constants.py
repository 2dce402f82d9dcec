"""Names and choices shared by the daemon and the CLI, kept free of heavy imports.

`ingot serve` builds its argument parser from these on every `ingot`
invocation, so they live apart from the gRPC and logging code that uses them.
"""

from __future__ import annotations

__all__ = ["LOG_FORMATS", "SERVE_ENV", "TOKEN_ENV"]

# Environment variable holding the bearer token for the daemon's TCP listener.
TOKEN_ENV = "INGOT_TOKEN"
# `ingot serve` options that may come from the environment instead (a container's
# entrypoint), by option name; a flag on the command line wins. INGOT_SOCKET lives
# in ingot.daemon.address, where clients read it too.
SERVE_ENV = {
    "listen": "INGOT_LISTEN",
    "http": "INGOT_HTTP",
    "health": "INGOT_HEALTH",
    "tls_cert": "INGOT_TLS_CERT",
    "tls_key": "INGOT_TLS_KEY",
    "token_file": "INGOT_TOKEN_FILE",
    "model_dir": "INGOT_MODEL_DIRS",
    "read_only": "INGOT_READ_ONLY",
}
# Values of `ingot serve --log-format`.
LOG_FORMATS = ("text", "json")
