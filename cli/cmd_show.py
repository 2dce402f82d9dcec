"""`ingot show NAME`: what a model package holds, or one part of it (Modelfile, parameters, template...)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ingot.cli.output import human_size, print_json, user_errors
from ingot.registry.reference import Reference
from ingot.registry.store import Store

if TYPE_CHECKING:
    from ingot.registry.gguf_info import GGUFInfo
    from ingot.registry.package import Package


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show",
        help="show a model's details, Modelfile, parameters, template, system prompt or license",
        description="Show what a model package in the local store holds. Without an option: a summary. "
        "--modelfile prints a Modelfile that recreates the package (FROM names the package itself).",
    )
    parser.add_argument("name", metavar="NAME[:TAG]", help="the model to show")
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--modelfile", dest="part", action="store_const", const="modelfile", help="print the Modelfile")
    part.add_argument("--parameters", dest="part", action="store_const", const="parameters", help="print PARAMETERs")
    part.add_argument(
        "--template", dest="part", action="store_const", const="template", help="print the effective prompt template"
    )
    part.add_argument("--system", dest="part", action="store_const", const="system", help="print the system prompt")
    part.add_argument("--license", dest="part", action="store_const", const="license", help="print the license(s)")
    part.add_argument("--json", dest="part", action="store_const", const="json", help="print everything as JSON")
    parser.set_defaults(handler=run, part=None)


def _parameter_lines(package: Package) -> list[str]:
    lines: list[str] = []
    width = max((len(name) for name in package.modelfile.parameters), default=0)
    for name, value in sorted(package.modelfile.parameters.items()):
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            shown = json.dumps(item) if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)
            lines.append(f"{name.ljust(width)}    {shown}")
    return lines


def _effective_template(package: Package, info: GGUFInfo) -> str | None:
    if package.modelfile.template is not None:
        return package.modelfile.template
    return info.chat_template


def _as_json(package: Package, info: GGUFInfo) -> dict[str, Any]:
    from ingot.modelfile import format_modelfile

    m = package.modelfile
    return {
        "name": package.reference.short,
        "reference": str(package.reference.without_digest()),
        "digest": package.digest,
        "size": package.size,
        "details": dict(package.config.get("config", {})),
        "descriptor": dict(package.config.get("descriptor", {})),
        "annotations": dict(package.manifest.get("annotations", {})),
        "gguf": {
            "architecture": info.architecture,
            "parameter_count": info.parameter_count,
            "file_type": info.file_type,
            "context_length": info.context_length,
            "embedding_length": info.embedding_length,
            "block_count": info.block_count,
        },
        "parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in m.parameters.items()},
        "template": _effective_template(package, info),
        "template_source": package.template_source,
        "system": m.system,
        "messages": [{"role": msg.role, "content": msg.content} for msg in m.messages],
        "licenses": list(package.licenses),
        "adapters": [str(p) for p in package.adapters],
        "requires": m.requires,
        "modelfile": format_modelfile(m),
        "manifest": dict(package.manifest),
    }


def _summary(package: Package, info: GGUFInfo) -> str:
    m = package.modelfile
    details = package.config.get("config", {})
    rows = [
        ("architecture", info.architecture),
        ("parameters", details.get("paramSize") or str(info.parameter_count)),
        ("quantization", details.get("quantization") or details.get("precision") or info.file_type or "?"),
        ("context length", info.context_length),
        ("embedding length", info.embedding_length),
        ("size", human_size(package.size)),
        ("digest", package.digest),
    ]
    annotations = package.manifest.get("annotations", {})
    for key, label in (("version", "version"), ("revision", "revision"), ("source", "source"), ("created", "created")):
        value = annotations.get(f"org.opencontainers.image.{key}")
        if value:
            rows.append((label, value))
    out = ["  Model"] + [f"    {label.ljust(18)}{value}" for label, value in rows if value is not None]
    template_from = {"modelfile": "from the Modelfile", "gguf": "from the GGUF (chat_template)",
                     "package": "the package's own chat template (ingot show --template prints it)", "none": "none"}
    out += ["", "  Template", f"    {template_from.get(package.template_source, package.template_source)}"]
    if m.parameters:
        out += ["", "  Parameters"] + [f"    {line}" for line in _parameter_lines(package)]
    if m.system:
        out += ["", "  System"] + [f"    {line}" for line in m.system.strip().splitlines()[:5]]
    if m.messages:
        out += ["", "  Messages"] + [f"    {msg.role}: {msg.content.splitlines()[0] if msg.content else ''}" for msg in m.messages]
    if package.adapters:
        out += ["", "  Adapters"] + [f"    {p.name}" for p in package.adapters]
    if package.licenses:
        out += ["", "  License"] + [
            f"    {text.strip().splitlines()[0] if text.strip() else '(empty)'}" for text in package.licenses
        ]
    return "\n".join(out)


@user_errors()
def run(args: argparse.Namespace) -> int:
    # Heavy imports (numpy via gguf) wait until the command runs.
    from ingot.modelfile import format_modelfile
    from ingot.registry.gguf_info import inspect_gguf
    from ingot.registry.package import load_package

    ref = Reference.parse(args.name)
    package = load_package(Store.open(), ref)
    m = package.modelfile
    if args.part == "modelfile":
        print(format_modelfile(m), end="")
        return 0
    if args.part == "parameters":
        for line in _parameter_lines(package):
            print(line)
        return 0
    if args.part == "system":
        if m.system is not None:
            print(m.system)
        return 0
    if args.part == "license":
        print("\n\n".join(text.rstrip("\n") for text in package.licenses))
        return 0
    info = inspect_gguf(package.weights)
    if args.part == "template":
        template = _effective_template(package, info)
        if template is not None:
            print(template)
        return 0
    if args.part == "json":
        print_json(_as_json(package, info))
        return 0
    print(_summary(package, info))
    return 0

