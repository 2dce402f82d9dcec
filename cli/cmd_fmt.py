"""`ingot fmt FILE`: print a Modelfile in canonical form, check it, or rewrite it in place."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fmt",
        help="print a Modelfile in canonical form (or check / rewrite it)",
        description=(
            "Parse a Modelfile and print its canonical form: instructions in a fixed order "
            "(FROM, ADAPTER, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE, REQUIRES), parameters "
            "sorted, the lightest quoting that reads back exactly. Comments are not kept. "
            "Exits 1 with the error (file:line:column and a hint) when the file does not parse."
        ),
        epilog="See docs/modelfile.md for the language and the canonical form.",
    )
    parser.add_argument("file", metavar="FILE", help="the Modelfile ('-' reads standard input)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="print nothing but a diff; exit 1 if FILE is not in canonical form")
    mode.add_argument("--write", action="store_true",
                      help="rewrite FILE in canonical form (atomically; only if it changes)")
    parser.add_argument("--drop-comments", action="store_true",
                        help="allow --write to remove the comments the canonical form cannot keep")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the Modelfile parser loads lark, which `ingot --help` must not pay for.
    from ingot.modelfile import ModelfileError, format_modelfile
    from ingot.modelfile.semantics import build_modelfile
    from ingot.modelfile.syntax import parse_document

    if args.write and args.file == "-":
        print("error: --write needs a file, not standard input", file=sys.stderr)
        return 2
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    name = "<stdin>" if args.file == "-" else args.file
    try:
        document = parse_document(data, filename=name)
        modelfile = build_modelfile(document)
    except ModelfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in modelfile.warnings:
        print(warning, file=sys.stderr)
    canonical = format_modelfile(modelfile)
    changed = data != canonical.encode("utf-8")
    if args.check:
        if changed:
            _print_diff(document.source.text, canonical, name)
            print(f"{name}: not in canonical form (run 'ingot fmt --write {name}')", file=sys.stderr)
            return 1
        return 0
    if args.write:
        if not changed:
            return 0
        if document.comments and not args.drop_comments:
            print(f"error: {name} has {len(document.comments)} comment line(s) that the canonical "
                  "form does not keep; pass --drop-comments to rewrite it anyway", file=sys.stderr)
            return 1
        _write_atomically(args.file, canonical.encode("utf-8"))
        print(f"reformatted {name}", file=sys.stderr)
        return 0
    sys.stdout.write(canonical)
    return 0


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _print_diff(before: str, after: str, name: str) -> None:
    diff = difflib.unified_diff(_lines(before), _lines(after), fromfile=name,
                                tofile=f"{name} (canonical)")
    sys.stdout.writelines(diff)


def _lines(text: str) -> list[str]:
    # Only "\n" ends a Modelfile line; str.splitlines would also split on \v, \x1c, U+2028...
    return [line + "\n" for line in text.split("\n")[:-1]]


def _write_atomically(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".ingot-fmt-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
