"""`ingot create NAME[:TAG] -f Modelfile`: build a model package into the local store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingot.cli.output import print_json, user_errors
from ingot.registry import mediatypes as mt
from ingot.registry.errors import PackageError
from ingot.registry.reference import Reference
from ingot.registry.store import Store

DESCRIPTION = """\
Build a model package from a Modelfile and tag it NAME[:TAG] in the local store
($INGOT_HOME/models, an OCI image layout).

FROM names a GGUF file, a folder holding exactly one GGUF, or a model already
in the store (its template, system prompt, parameters, messages, licenses and
adapters are inherited; what this Modelfile sets replaces them).

The GGUF is not copied when the store is on the same filesystem: it is cloned
(reflink) where the filesystem can, else hardlinked and made read-only, so an
in-place edit of the file cannot silently corrupt the package. Use --copy for
an independent copy.

A TEMPLATE that does not compile is an error at its line and column in the
Modelfile. The package's template (its TEMPLATE, else the GGUF's chat
template) is then rendered once against a standard conversation within the
render budget (templates: in $INGOT_HOME/config.yaml); a failure is a warning.

The same Modelfile and files always give the same digest. Set SOURCE_DATE_EPOCH
to stamp org.opencontainers.image.created reproducibly.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "create",
        help="build a model package from a Modelfile",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME[:TAG]", help="the reference to tag, e.g. mymodel or me/mymodel:v1")
    parser.add_argument(
        "-f", "--file", default="Modelfile", metavar="PATH", help="the Modelfile to read (default: ./Modelfile)"
    )
    parser.add_argument(
        "-q", "--quantize", metavar="TYPE", help="quantize the weights first, e.g. q4_K_M, q8_0 (from F16/F32 weights)"
    )
    parser.add_argument("--version", dest="pkg_version", metavar="V", help="org.opencontainers.image.version")
    parser.add_argument("--revision", metavar="R", help="org.opencontainers.image.revision (e.g. a git commit)")
    parser.add_argument("--source", metavar="URL", help="org.opencontainers.image.source")
    parser.add_argument("--copy", action="store_true", help="store independent copies of the files (no reflink/hardlink)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    # Heavy imports (numpy via gguf, rich) wait until the command runs, so
    # `ingot --help` and other commands start fast.
    from ingot.cli.progress import progress_display
    from ingot.daemon.config import load_template_budget
    from ingot.modelfile import parse_file
    from ingot.registry.home import IngotHome
    from ingot.registry.package import build_package, load_package
    from ingot.registry.template_check import template_warnings

    ref = Reference.parse(args.name)
    if ref.digest:
        raise PackageError(f"'{args.name}' names a digest; create takes NAME[:TAG]")
    path = Path(args.file).expanduser()
    if not path.is_file():
        raise PackageError(f"no Modelfile at {path}", hint="pass one with -f PATH")
    modelfile = parse_file(path)
    for warning in modelfile.warnings:
        print(warning, file=sys.stderr)
    annotations = {
        mt.ANNOTATION_VERSION: args.pkg_version,
        mt.ANNOTATION_REVISION: args.revision,
        mt.ANNOTATION_SOURCE: args.source,
    }
    store = Store.open()
    with progress_display(enabled=False if args.json else None) as report:
        descriptor = build_package(
            store,
            modelfile,
            path.absolute().parent,
            ref=ref,
            quantize=args.quantize,
            annotations={k: v for k, v in annotations.items() if v},
            progress=report,
            link=not args.copy,
        )
    package = load_package(store, ref)
    warnings = template_warnings(package, budget=load_template_budget(IngotHome.from_env()))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(
            {
                "name": ref.short,
                "reference": str(ref),
                "digest": descriptor.digest,
                "size": package.size,
                "template_source": package.template_source,
                "warnings": list(warnings),
            }
        )
    else:
        print(f"created {ref.short} {descriptor.digest}")
    return 0
