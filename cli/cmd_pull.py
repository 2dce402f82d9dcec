"""`ingot pull NAME...`: fetch packages from an OCI registry into the local store."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingot.cli.output import human_size, user_errors
from ingot.cli.registry_args import (
    CONNECTION_HELP,
    add_connection_arguments,
    add_output_arguments,
    client_options,
    output_mode,
)
from ingot.cli.transfer_progress import transfer_display
from ingot.registry.errors import ReferenceError
from ingot.registry.home import default_registry
from ingot.registry.reference import Reference
from ingot.registry.store import Store

if TYPE_CHECKING:
    from ingot.registry.oci import ClientOptions

DESCRIPTION = f"""\
Pull NAME (host[:port]/namespace/name:tag, or ...@sha256:<digest>) from an OCI
registry into the local store. Without a host, $INGOT_REGISTRY is used.
Several names are pulled one after the other; the first failure stops the
command. ALIAS=NAME also tags the pulled model ALIAS in the local store: a
name clients keep using while NAME's tag moves (`llama=host/team/llama:1.4`).
--from-file FILE reads more entries from FILE, one per line (# comments), as
a Kubernetes init container reads its group's models from a ConfigMap.

Only missing blobs are downloaded, in parallel; every blob's sha256 and size
are checked before it enters the store. An interrupted download resumes where
it stopped when pulled again. Ollama and Docker Model Runner packages are
converted into ingot packages (the GGUF is kept as is) so they can be shown
and served. The package's template is rendered once against a standard
conversation; a template that does not compile or fails (or goes over the
render budget) is a warning: the package is kept, its chats would fail.

{CONNECTION_HELP}"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pull", help="pull a package from an OCI registry", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", metavar="[ALIAS=]NAME", nargs="*", help="e.g. localhost:5000/team/llama:1 or llama=localhost:5000/team/llama:1"
    )
    parser.add_argument(
        "--from-file", type=Path, metavar="FILE", help="also pull the [ALIAS=]NAME entries of FILE, one per line"
    )
    add_connection_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class PullEntry:
    """One model to pull: `name` as written, and the local alias to tag it with, if any."""

    name: str
    alias: Reference | None = None


def parse_entry(text: str, *, where: str = "") -> PullEntry:
    """`[ALIAS=]NAME` -> PullEntry; ReferenceError (prefixed with `where`, e.g. 'models.txt:3: ') otherwise."""
    alias_text, sep, name = text.strip().rpartition("=")
    if not sep:
        name = text.strip()
    try:
        Reference.parse(name)
        alias = Reference.parse(alias_text) if sep else None
    except ReferenceError as exc:
        raise ReferenceError(f"{where}{exc.message}", hint=exc.hint) from None
    if alias is not None and alias.digest is not None:
        raise ReferenceError(f"{where}the alias {alias_text!r} has a digest; an alias is a tag, e.g. llama:1")
    return PullEntry(name, alias)


def read_entries(path: Path) -> list[PullEntry]:
    """The entries of a models file: one `[ALIAS=]NAME` per line, blank lines and `#` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ReferenceError(f"cannot read {path}: {exc.strerror or exc}") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(parse_entry(line, where=f"{path}:{number}: "))
    return entries


@user_errors()
def run(args: argparse.Namespace) -> int:
    entries = [parse_entry(text) for text in args.names]
    if args.from_file is not None:
        entries += read_entries(args.from_file)
    if not entries:
        raise ReferenceError("nothing to pull", hint="name a model, e.g. localhost:5000/team/llama:1, or --from-file")
    options = client_options(args)
    mode = output_mode(args)
    store = Store.open()
    for entry in entries:
        _pull_one(store, entry, options=options, mode=mode)
    return 0


def _pull_one(store: Store, entry: PullEntry, *, options: ClientOptions, mode: str) -> None:
    # Imported here, not at the top: the transfer code loads oras and
    # requests, which building the parser for `ingot --help` must not pay for.
    from ingot.daemon.config import load_template_budget
    from ingot.registry.home import IngotHome
    from ingot.registry.oci import pull

    ref = Reference.parse(entry.name)
    if ref.host is None:
        ref = ref.for_remote(default_registry())
        name: Reference | str = ref
    else:
        name = entry.name  # keeps whether a tag was written next to a digest
    with transfer_display(mode, title=f"pull {ref.short}") as report:
        result = pull(store, name, options=options, progress=report,
                      template_budget=load_template_budget(IngotHome.from_env()))
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
    if entry.alias is not None:
        pulled = store.resolve(ref.with_digest(result.digest))
        assert pulled is not None, "a pull that succeeded left its manifest in the store"
        store.tag(entry.alias, pulled)
        if mode == "bars":
            print(f"tagged {entry.alias.short}")
