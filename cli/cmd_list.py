"""`ingot list`: the models in the local store."""

from __future__ import annotations

import argparse
from typing import Any

from ingot.cli.output import human_ago, human_size, print_json, print_table, user_errors
from ingot.registry import mediatypes as mt
from ingot.registry.errors import StoreError
from ingot.registry.store import Store, TagEntry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list",
        aliases=["ls"],
        help="list the models in the local store",
        description="List every tagged model in the local store ($INGOT_HOME/models): name, ID (the start of the "
        "manifest digest), total size and when the tag was last written.",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=run)


def _package_facts(store: Store, entry: TagEntry) -> dict[str, Any]:
    """Size and annotations from the manifest; a broken manifest still lists, with what is known."""
    size = entry.descriptor.size
    annotations: dict[str, str] = {}
    try:
        manifest = store.read_json(entry.descriptor.digest)
    except StoreError:
        return {"size": None, "annotations": {}}
    if isinstance(manifest, dict):
        for part in [manifest.get("config"), *(manifest.get("layers") or [])]:
            if isinstance(part, dict) and isinstance(part.get("size"), int):
                size += part["size"]
        if isinstance(manifest.get("annotations"), dict):
            annotations = manifest["annotations"]
    return {"size": size, "annotations": annotations}


@user_errors()
def run(args: argparse.Namespace) -> int:
    store = Store.open()
    rows: list[dict[str, Any]] = []
    for entry in store.list_tags():
        facts = _package_facts(store, entry)
        rows.append(
            {
                "name": entry.reference.short,
                "reference": str(entry.reference),
                "digest": entry.descriptor.digest,
                "id": entry.descriptor.digest.split(":", 1)[1][:12],
                "size": facts["size"],
                "modified": entry.tagged_at,
                "created": facts["annotations"].get(mt.ANNOTATION_CREATED),
                "version": facts["annotations"].get(mt.ANNOTATION_VERSION),
            }
        )
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["NAME", "ID", "SIZE", "MODIFIED"],
        [
            [
                row["name"],
                row["id"],
                "?" if row["size"] is None else human_size(row["size"]),
                human_ago(row["modified"] or row["created"]),
            ]
            for row in rows
        ],
    )
    return 0
