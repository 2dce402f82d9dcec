"""`ingot plan MODEL`: will it fit? Layers per GPU, context that fits, and memory per device."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any

from ingot.cli.cmd_hw import gib
from ingot.cli.output import print_json, print_table, user_errors
from ingot.daemon.hardware import HardwareReport, HardwareReportError, detect_hardware
from ingot.daemon.planner import KV_CACHE_TYPES, ModelShape, Plan, PlanError, plan_offload

# Ollama's defaults, also the Modelfile parameter table's (ingot.modelfile.parameters).
DEFAULT_NUM_CTX = 4096
DEFAULT_NUM_BATCH = 512


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="estimate how a model would be placed on this machine's GPUs and RAM (will it fit?)",
        description=(
            "Plan GPU offload for a model in the local store (NAME[:TAG]) or a GGUF file: how many layers go "
            "to which GPU, the memory each device needs, and the largest context that fits. Plans for the "
            "GPUs detected even when the installed engine cannot use them (and says so). --hw plans for "
            "another machine from its saved `ingot hw --json` report."
        ),
    )
    parser.add_argument("model", metavar="NAME|FILE.gguf", help="a model in the local store, or a GGUF file")
    parser.add_argument(
        "--ctx",
        type=int,
        metavar="N",
        help="context tokens per slot (default: the model's num_ctx, else 4096 or its training context if smaller)",
    )
    parser.add_argument("--parallel", type=int, default=1, metavar="N", help="parallel request slots (default 1)")
    parser.add_argument(
        "--num-gpu", type=int, metavar="N", help="force N layers onto the GPUs (0: CPU only; -1: choose, the default)"
    )
    parser.add_argument("--batch", type=int, metavar="N", help="batch size (default: the model's num_batch, else 512)")
    parser.add_argument(
        "--kv-type", default="f16", choices=tuple(KV_CACHE_TYPES), help="KV cache element type (default f16)"
    )
    parser.add_argument(
        "--flash-attn", action="store_true", help="assume flash attention (no KQ matrix in the compute buffer)"
    )
    parser.add_argument("--hw", metavar="FILE.json", help="plan for the machine described by a saved `ingot hw --json`")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run)


@user_errors(PlanError, HardwareReportError)
def run(args: argparse.Namespace) -> int:
    label, shape, parameters = _load_model(args.model)
    hardware = _load_hardware(args.hw)
    n_ctx = args.ctx
    if n_ctx is None:
        n_ctx = int(parameters.get("num_ctx", 0)) or _default_context(shape)
    plan = plan_offload(
        shape,
        hardware,
        n_ctx=n_ctx,
        n_parallel=args.parallel,
        num_gpu=args.num_gpu if args.num_gpu is not None else _int_or_none(parameters.get("num_gpu")),
        kv_type=args.kv_type,
        n_batch=args.batch if args.batch is not None else int(parameters.get("num_batch", DEFAULT_NUM_BATCH)),
        flash_attn=args.flash_attn,
    )
    if args.json:
        print_json({"model": label, "hardware": args.hw or "detected", **plan.to_dict()})
        return 0
    print(render(label, shape, plan, hardware))
    return 0


def _load_model(model: str) -> tuple[str, ModelShape, dict[str, Any]]:
    """(label, shape, the package's PARAMETERs) for a GGUF path or a store reference."""
    from ingot.registry.gguf_info import inspect_gguf

    path = Path(model).expanduser()
    if path.exists() or model.lower().endswith(".gguf"):
        return str(path), ModelShape.from_gguf_info(inspect_gguf(path)), {}
    from ingot.registry.package import load_package
    from ingot.registry.reference import Reference
    from ingot.registry.store import Store

    reference = Reference.parse(model)
    package = load_package(Store.open(), reference)
    info = inspect_gguf(package.weights)
    return reference.short, ModelShape.from_gguf_info(info), dict(package.modelfile.parameters)


def _load_hardware(path: str | None) -> HardwareReport:
    if path is None:
        return detect_hardware(os.environ)
    hint = "save one with `ingot hw --json > FILE.json`"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HardwareReportError(path, f"cannot read: {exc.strerror or exc}", hint) from None
    except UnicodeDecodeError as exc:
        raise HardwareReportError(path, f"not a JSON text file (byte {exc.start} is not UTF-8)", hint) from None
    return HardwareReport.from_json(text, source=path)


def _default_context(shape: ModelShape) -> int:
    """Ollama's default context, but never past what the model was trained for."""
    if shape.context_length > 0:
        return min(DEFAULT_NUM_CTX, shape.context_length)
    return DEFAULT_NUM_CTX


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def render(label: str, shape: ModelShape, plan: Plan, hardware: HardwareReport) -> str:
    out = io.StringIO()
    units = shape.block_count + 1
    out.write(f"model     {label}: {shape.block_count} blocks + output layer, {gib(shape.weights_bytes)} of weights\n")
    slots = f" x {plan.n_parallel} slots" if plan.n_parallel > 1 else ""
    out.write(
        f"context   {plan.n_ctx}{slots}, KV cache {plan.kv_type} {gib(plan.kv_cache_bytes)}; "
        f"largest context that fits: {plan.max_n_ctx}\n"
    )
    if plan.backend is None:
        where = "CPU only (no GPU)"
    elif plan.n_gpu_layers == 0:
        where = f"0/{units} layers on {plan.backend}: CPU only"
    else:
        where = f"{plan.n_gpu_layers}/{units} layers on {plan.backend}"
        if not plan.engine_can_offload:
            where += " (the installed engine cannot offload: it would run on the CPU)"
    out.write(f"placement {where}\n")
    engine = f"engine    n_gpu_layers={plan.effective_n_gpu_layers} main_gpu={plan.main_gpu}"
    if plan.tensor_split:
        engine += " tensor_split=" + ",".join(f"{value:g}" for value in plan.tensor_split)
    out.write(engine + "\n")
    names = {g.key: g.name for g in hardware.gpus}
    rows = [
        (
            usage.key,
            names.get(usage.key, usage.name),
            usage.layers,
            gib(usage.weights_bytes),
            gib(usage.kv_bytes),
            gib(usage.compute_bytes),
            gib(usage.overhead_bytes),
            gib(usage.total_bytes),
            gib(usage.budget_bytes),
            _fits(usage),
        )
        for usage in plan.usage
    ]
    table = io.StringIO()
    headers = ("device", "name", "layers", "weights", "kv", "compute", "overhead", "total", "available", "fits")
    print_table(headers, rows, file=table)
    out.write("\n" + table.getvalue())
    if plan.notes:
        out.write("\n" + "".join(f"note: {note}\n" for note in plan.notes))
    return out.getvalue().rstrip("\n")


def _fits(usage: Any) -> str:
    if usage.fits:
        return "yes"
    if usage.key == "cpu" and usage.kv_bytes + usage.compute_bytes <= usage.budget_bytes:
        return "paged"  # memory-mapped weights beyond RAM: works, slowly
    return "NO"


