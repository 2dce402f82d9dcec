"""Entry point of the `ingot` command: builds the argparse tree from one module per command."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

# One module per command, each exposing `register(subparsers)`; the order here
# is the order `ingot --help` lists them in.
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_fmt",
    "cmd_inspect",
    "cmd_synth",
    "cmd_create",
    "cmd_list",
    "cmd_show",
    "cmd_prompt",
    "cmd_cp",
    "cmd_rm",
    "cmd_push",
    "cmd_pull",
    "cmd_login",
    "cmd_hw",
    "cmd_plan",
    "cmd_serve",
    "cmd_run",
    "cmd_batch",
    "cmd_ps",
    "cmd_stop",
    "cmd_watch",
)


def _version() -> str:
    try:
        return metadata.version("ingot")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingot",
        description="Package, version, push and serve local LLMs.",
        epilog="Run 'ingot COMMAND --help' for what a command takes.",
    )
    parser.add_argument("--version", action="version", version=f"ingot {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ingot.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
