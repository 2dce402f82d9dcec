"""`ingot serve`: run the daemon in the foreground (gRPC on a unix socket, optionally TCP)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ingot.daemon.address import SOCKET_ENV, AddressError, default_socket, parse_address
from ingot.daemon.constants import LOG_FORMATS, SERVE_ENV, TOKEN_ENV
from ingot.daemon.keepalive import DEFAULT_KEEP_ALIVE, KeepAliveError, parse_keep_alive
from ingot.registry.home import IngotHome, default_registry

if TYPE_CHECKING:
    from ingot.daemon.server import ServeConfig
    from ingot.registry.mounted import ModelDir

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

--health HOST:PORT answers only the standard gRPC health service, without TLS
or token (for Kubernetes' gRPC probes): service "" is readiness, "liveness"
stays SERVING while the daemon drains its streams.

Models load on first use and stay loaded for --keep-alive after their last
request; requests may override it. See docs/api.md.

--model-dir NAME=PATH serves a package mounted as a folder (a Kubernetes image
volume: each layer a file named by its title) without copying it. A store on a
read-only mount (or --read-only) is served without writing anything to it.
See docs/kubernetes.md.

In a container, options may come from the environment instead (a flag wins):
  INGOT_SOCKET (--socket)  INGOT_LISTEN (--listen)  INGOT_HTTP (--http)
  INGOT_HEALTH (--health)  INGOT_TLS_CERT / INGOT_TLS_KEY (--tls-cert / --tls-key)
  INGOT_TOKEN, INGOT_TOKEN_FILE (--token-file)  INGOT_READ_ONLY=1 (--read-only)
  INGOT_MODEL_DIRS (--model-dir; NAME=PATH entries separated by spaces or newlines)
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
    parser.add_argument(
        "--socket", type=Path, help=f"unix socket path (default: ${SOCKET_ENV}, else $INGOT_HOME/ingot.sock)"
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="also listen on TCP (loopback, or with TLS and a token)")
    parser.add_argument(
        "--http", metavar="HOST:PORT",
        help="also serve the OpenAI- and Ollama-compatible HTTP API, e.g. 127.0.0.1:11435 (off)",
    )
    parser.add_argument(
        "--health", metavar="HOST:PORT",
        help="also answer gRPC health checks, plaintext and without token, e.g. 0.0.0.0:7734 (off)",
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
        "--interactive-slots", type=int, default=0, metavar="N",
        help="of each model's --parallel slots, how many batch-priority work (ingot batch, /v1/batches) leaves to "
        "interactive requests, which then need not pause a batch sequence to start (0: batch may fill every slot)",
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
        "--model-dir", action="append", metavar="[NAME=]PATH", default=None,
        help="serve the package mounted at PATH (an image volume) as NAME (default: the folder's name); repeatable",
    )
    parser.add_argument(
        "--read-only", action="store_true", default=None,
        help="never write to the store (automatic when it is on a read-only mount)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH",
        help="daemon config file: watch: (a GitOps watcher), templates: (the render budget), http: (allowed Host "
             "names, body cap), streams: (write-stall timeout); default $INGOT_HOME/config.yaml",
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
    socket_path = args.socket.expanduser().absolute() if args.socket else default_socket(home.root, env).unix_path
    assert socket_path is not None

    def option(name: str) -> str | None:
        """The flag's value, else its environment variable's (SERVE_ENV), else None."""
        value = getattr(args, name)
        if value is not None:
            return str(value)
        return (env.get(SERVE_ENV[name]) or "").strip() or None

    listen_text, http_text, health_text = option("listen"), option("http"), option("health")
    listen = parse_address(listen_text) if listen_text else None
    http = parse_address(http_text) if http_text else None
    health = parse_address(health_text) if health_text else None
    cert, key, token_file = option("tls_cert"), option("tls_key"), option("token_file")
    if (cert is None) != (key is None):
        raise ConfigError(
            f"--tls-cert and --tls-key go together ({SERVE_ENV['tls_cert']} and {SERVE_ENV['tls_key']}); give both"
        )
    tls = TLSFiles(Path(cert).expanduser(), Path(key).expanduser()) if cert and key else None
    token = read_token_file(Path(token_file).expanduser()) if token_file else (env.get(TOKEN_ENV) or "").strip()
    daemon_config = load_daemon_config(home, args.config)
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
        interactive_slots=args.interactive_slots,
        keep_alive=parse_keep_alive(args.keep_alive),
        max_memory=parse_size(args.max_memory) if args.max_memory else None,
        grace_seconds=args.grace,
        default_registry=default_registry(env),
        watch=daemon_config.watch,
        template_budget=daemon_config.templates,
        limits=daemon_config.limits,
        health=health,
        model_dirs=_model_dirs(args.model_dir, env),
        read_only=_read_only(args.read_only, env),
    )


def _model_dirs(flags: list[str] | None, env: Mapping[str, str]) -> tuple[ModelDir, ...]:
    from ingot.registry.mounted import parse_model_dir

    entries = flags if flags is not None else (env.get(SERVE_ENV["model_dir"]) or "").split()
    return tuple(parse_model_dir(entry) for entry in entries)


def _read_only(flag: bool | None, env: Mapping[str, str]) -> bool | None:
    if flag:
        return True
    raw = (env.get(SERVE_ENV["read_only"]) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return None  # decided by the store's mount
    if raw in ("1", "true", "yes"):
        return True
    raise ValueError(f"{SERVE_ENV['read_only']}={raw!r}: write 1 or 0")


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
