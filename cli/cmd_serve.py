"""`ingot serve`: run the daemon in the foreground (gRPC on a unix socket, optionally TCP)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ingot.daemon.address import AddressError, default_socket, parse_address
from ingot.daemon.constants import LOG_FORMATS, TOKEN_ENV
from ingot.daemon.keepalive import DEFAULT_KEEP_ALIVE, KeepAliveError, parse_keep_alive
from ingot.registry.home import IngotHome, default_registry

if TYPE_CHECKING:
    from ingot.daemon.server import ServeConfig

__all__ = ["parse_size", "register"]

_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*")
_SCALES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

DESCRIPTION = """\
Run the ingot daemon in the foreground until SIGTERM or Ctrl-C.

It listens on the unix socket $INGOT_HOME/ingot.sock (mode 0600), where the
ingot CLI finds it. --listen HOST:PORT adds a TCP listener; anywhere but
loopback that requires TLS (--tls-cert/--tls-key) and a token ($INGOT_TOKEN or
--token-file) that clients send as 'authorization: Bearer TOKEN'. Clients
elsewhere set INGOT_HOST=HOST:PORT.

--http HOST:PORT serves the OpenAI-compatible (/v1/...) and Ollama-compatible
(/api/...) HTTP APIs, /health, /metrics and /openapi.json over the same
models, with the same rule off loopback. See docs/http.md.

Models load on first use and stay loaded for --keep-alive after their last
request; requests may override it. See docs/api.md.
"""


def parse_size(text: str) -> int:
    """'8G', '512MiB', '1.5GB', '1048576' -> bytes (binary units); ValueError otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid size {text!r}: write a number of bytes or e.g. 512M, 8G")
    return int(float(match.group(1)) * _SCALES[match.group(2).lower()])


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the daemon (gRPC API, optional HTTP API) in the foreground",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--socket", type=Path, help="unix socket path (default: $INGOT_HOME/ingot.sock)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="also listen on TCP (loopback, or with TLS and a token)")
    parser.add_argument(
        "--http", metavar="HOST:PORT",
        help="also serve the OpenAI- and Ollama-compatible HTTP API, e.g. 127.0.0.1:11435 (off)",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate (chain) for --listen and --http")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="TLS private key for --listen and --http")
    parser.add_argument(
        "--token-file", type=Path, metavar="PATH", help=f"file holding the bearer token (default: ${TOKEN_ENV})"
    )
    parser.add_argument("--max-loaded", type=_positive_int, default=3, metavar="N", help="models loaded at once (3)")
    parser.add_argument(
        "--max-queue", type=_positive_int, default=512, metavar="N",
        help="requests admitted per model, running or waiting; more get RESOURCE_EXHAUSTED (512)",
    )
    parser.add_argument(
        "--parallel", type=_positive_int, default=4, metavar="N", help="requests decoded together per model (4)"
    )
    parser.add_argument(
        "--keep-alive", default=str(DEFAULT_KEEP_ALIVE), metavar="DURATION",
        help="how long an idle model stays loaded: 5m, 1h, 0 (unload at once), -1 (forever) (5m)",
    )
    parser.add_argument(
        "--max-memory", metavar="SIZE", help="cap on the estimated memory of all loaded models, e.g. 16G (none)"
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, metavar="SECONDS",
        help="on shutdown, how long requests in flight may run before they are cancelled (10)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH",
        help="daemon config file; its watch: section runs a GitOps watcher (default: $INGOT_HOME/config.yaml)",
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text", help="log lines as text or JSON (text)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=run)


def _config(args: argparse.Namespace) -> ServeConfig:
    # The daemon's modules pull in gRPC, llama.cpp and the registry client: import them
    # only when serving, so that building the `ingot` parser stays cheap.
    from ingot.daemon.auth import read_token_file
    from ingot.daemon.config import load_daemon_config
    from ingot.daemon.server import ConfigError, ServeConfig, TLSFiles

    env = os.environ
    home = IngotHome.from_env(env)
    socket_path = args.socket.expanduser().absolute() if args.socket else default_socket(home.root).unix_path
    assert socket_path is not None
    listen = parse_address(args.listen) if args.listen else None
    http = parse_address(args.http) if args.http else None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together; give both")
    tls = TLSFiles(args.tls_cert.expanduser(), args.tls_key.expanduser()) if args.tls_cert else None
    token = read_token_file(args.token_file.expanduser()) if args.token_file else (env.get(TOKEN_ENV) or "").strip()
    return ServeConfig(
        home=home,
        socket_path=socket_path,
        listen=listen,
        http=http,
        tls=tls,
        token=token or None,
        max_loaded=args.max_loaded,
        max_queue=args.max_queue,
        parallel=args.parallel,
        keep_alive=parse_keep_alive(args.keep_alive),
        max_memory=parse_size(args.max_memory) if args.max_memory else None,
        grace_seconds=args.grace,
        default_registry=default_registry(env),
        watch=load_daemon_config(home, args.config).watch,
    )


def run(args: argparse.Namespace) -> int:
    from ingot.daemon.requestlog import configure_logging
    from ingot.daemon.server import ConfigError, serve

    try:
        config = _config(args)
        config.check()
    except (ConfigError, AddressError, KeepAliveError, ValueError) as exc:
        print(f"ingot serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, level=10 if args.verbose else 20)
    try:
        return serve(config)
    except (ConfigError, OSError) as exc:
        print(f"ingot serve: {exc}", file=sys.stderr)
        return 1
