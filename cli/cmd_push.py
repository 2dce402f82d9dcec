"""`ingot push NAME [DESTINATION]`: send a package from the local store to an OCI registry."""

from __future__ import annotations

import argparse
import json
import sys

from ingot.cli.output import human_size, user_errors
from ingot.cli.registry_args import (
    CONNECTION_HELP,
    add_connection_arguments,
    add_output_arguments,
    client_options,
    output_mode,
)
from ingot.cli.transfer_progress import transfer_display
from ingot.registry.home import default_registry
from ingot.registry.reference import Reference
from ingot.registry.store import Store

DESCRIPTION = f"""\
Push the package NAME from the local store to a registry that speaks the OCI
distribution API (CNCF distribution, Harbor, GHCR, ...). NAME is
host[:port]/namespace/name:tag; without a host, $INGOT_REGISTRY is used.
DESTINATION, when given, is where to push it instead.

Only what the registry lacks is sent: blobs it already has are skipped (HEAD),
blobs another repository of the same registry has are mounted, the rest are
streamed (in parallel, with retries). Pushing an unchanged package sends only
the manifest.

{CONNECTION_HELP}"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push", help="push a package to an OCI registry", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="the local package, e.g. localhost:5000/team/llama:1")
    parser.add_argument("destination", metavar="DESTINATION", nargs="?",
                        help="push under this reference instead (host[:port]/namespace/name:tag)")
    add_connection_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the transfer code loads oras and
    # requests, which building the parser for `ingot --help` must not pay for.
    from ingot.registry.oci import push

    options = client_options(args)
    source = Reference.parse(args.name)
    registry = default_registry()
    destination = Reference.parse(args.destination) if args.destination else source
    destination = destination.for_remote(registry)
    store = Store.open()
    mode = output_mode(args)
    with transfer_display(mode, title=f"push {destination.short}") as report:
        result = push(store, source, destination=destination, options=options, progress=report)
    if mode == "json":
        print(json.dumps({"status": "result", **result.to_json()}))
    elif mode == "quiet":
        print(result.reference)
    else:
        skipped = f", {human_size(result.bytes_skipped)} already there" if result.bytes_skipped else ""
        mounted = f", {result.blobs_mounted} mounted" if result.blobs_mounted else ""
        print(f"pushed {destination.short} {result.digest} "
              f"({human_size(result.bytes_transferred)} sent{skipped}{mounted})", file=sys.stdout)
    return 0
