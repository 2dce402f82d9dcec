"""`ingot pull NAME`: fetch a package from an OCI registry into the local store."""

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
Pull NAME (host[:port]/namespace/name:tag, or ...@sha256:<digest>) from an OCI
registry into the local store. Without a host, $INGOT_REGISTRY is used.

Only missing blobs are downloaded, in parallel; every blob's sha256 and size
are checked before it enters the store. An interrupted download resumes where
it stopped when pulled again. Ollama and Docker Model Runner packages are
converted into ingot packages (the GGUF is kept as is) so they can be shown
and served.

{CONNECTION_HELP}"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pull", help="pull a package from an OCI registry", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="e.g. localhost:5000/team/llama:1")
    add_connection_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the transfer code loads oras and
    # requests, which building the parser for `ingot --help` must not pay for.
    from ingot.registry.oci import pull

    options = client_options(args)
    ref = Reference.parse(args.name)
    if ref.host is None:
        ref = ref.for_remote(default_registry())
        name: Reference | str = ref
    else:
        name = args.name  # keeps whether a tag was written next to a digest
    store = Store.open()
    mode = output_mode(args)
    with transfer_display(mode, title=f"pull {ref.short}") as report:
        result = pull(store, name, options=options, progress=report)
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if mode == "json":
        print(json.dumps({"status": "result", **result.to_json()}))
    elif mode == "quiet":
        print(result.reference)
    else:
        converted = f" (converted from {result.format})" if result.format not in ("ingot", "modelpack") else ""
        skipped = f", {human_size(result.bytes_skipped)} already local" if result.bytes_skipped else ""
        print(f"pulled {ref.without_digest().short} {result.digest}{converted} "
              f"({human_size(result.bytes_transferred)} received{skipped})")
    return 0
