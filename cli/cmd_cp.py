"""`ingot cp SRC DST` (alias `ingot tag`): give a model in the local store another name; no data is copied."""

from __future__ import annotations

import argparse

from ingot.cli.output import user_errors
from ingot.registry.errors import ModelNotFoundError, ReferenceError
from ingot.registry.reference import Reference
from ingot.registry.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cp",
        aliases=["tag"],
        help="copy a model to a new name (a new tag for the same package)",
        description="Tag the package SRC names as DST too, e.g. `ingot cp mymodel localhost:5000/me/mymodel:v1` "
        "before a push. Both names then share every blob; `ingot rm` of one keeps the other intact.",
    )
    parser.add_argument("source", metavar="SRC", help="an existing model (NAME[:TAG] or NAME@sha256:...)")
    parser.add_argument("destination", metavar="DST", help="the new name, NAME[:TAG]")
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    source = Reference.parse(args.source)
    destination = Reference.parse(args.destination)
    if destination.digest:
        raise ReferenceError(f"'{args.destination}' names a digest; a destination is NAME[:TAG]")
    store = Store.open()
    with store.writing():
        descriptor = store.resolve(source)
        if descriptor is None:
            raise ModelNotFoundError(
                f"model '{source.short}' not found", hint="create it with `ingot create` or pull it with `ingot pull`"
            )
        store.tag(destination, descriptor)
    print(f"copied '{source.short}' to '{destination.short}'")
    return 0
