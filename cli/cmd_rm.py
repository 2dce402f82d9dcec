"""`ingot rm NAME...`: remove models from the local store, and the blobs no other model uses."""

from __future__ import annotations

import argparse
import sys

from ingot.cli.output import error, human_size, user_errors
from ingot.registry.reference import Reference
from ingot.registry.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rm",
        help="remove models from the local store",
        description="Remove each named model. Blobs still used by another model stay; the rest are deleted. "
        "An unknown name is an error (exit status 1); the other names are still removed.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME[:TAG]", help="models to remove")
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    refs = [Reference.parse(name) for name in args.names]  # all parse before anything is removed
    store = Store.open()
    status = 0
    removed_any = False
    for ref in refs:
        if store.untag(ref) is None:
            error(f"model '{ref.short}' not found")
            status = 1
            continue
        removed_any = True
        print(f"deleted '{ref.short}'")
    if removed_any:
        result = store.gc(wait=False)
        if result.skipped:
            print(
                "note: another ingot process is writing to the store; unused blobs are left for the next `ingot rm`",
                file=sys.stderr,
            )
        elif result.freed_bytes:
            print(f"removed {len(result.removed)} unused blobs ({human_size(result.freed_bytes)})")
    return status
