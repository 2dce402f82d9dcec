"""`ingot hw`: the CPU, RAM and GPUs this machine has, and which of them the installed engine can use."""

from __future__ import annotations

import argparse
import io
import os
from typing import Any

from ingot.cli.output import print_json, print_table, user_errors
from ingot.daemon.hardware import HardwareReport, detect_hardware

MIB = 1024**2
GIB = 1024**3


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hw",
        help="show the CPU, RAM and GPUs found, and what the installed engine can offload to",
        description=(
            "Detect CPU cores, RAM (cgroup limits applied), NVIDIA GPUs (NVML or nvidia-smi), AMD GPUs "
            "(sysfs or rocm-smi) and Apple Metal, honouring CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES / "
            "ROCR_VISIBLE_DEVICES, and ask the installed llama-cpp-python which GPU backends it was built "
            "with. Save the JSON (`ingot hw --json > box.json`) to plan for this machine elsewhere "
            "with `ingot plan MODEL --hw box.json`."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up on a probe (nvidia-smi, rocm-smi, NVML, sysctl) after this long (default 5)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="refresh a live table of every device (utilisation, memory, temperature, power, the loaded "
        "models holding memory there) until Ctrl-C; with --json, one JSON object per refresh",
    )
    parser.add_argument(
        "--interval", type=_positive, default=2.0, metavar="SECONDS", help="seconds between --watch refreshes (default 2)"
    )
    parser.add_argument("--count", type=int, default=0, metavar="N", help="stop --watch after N refreshes")
    parser.set_defaults(handler=run)


@user_errors()
def run(args: argparse.Namespace) -> int:
    if args.watch:
        from ingot.cli.hw_watch import watch

        return watch(interval_s=args.interval, count=args.count, as_json=args.json, timeout_s=args.timeout)
    report = detect_hardware(os.environ, timeout_s=args.timeout)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(render(report))
    return 0


def render(report: HardwareReport) -> str:
    """The human-readable report: aligned sections, no colour, fit for logs and bug reports."""
    out = io.StringIO()
    cpu = report.cpu
    out.write("CPU\n")
    threads = f"{cpu.usable_threads} usable" if cpu.usable_threads != cpu.logical_cores else "all usable"
    out.write(f"  {cpu.model}: {cpu.physical_cores} cores, {cpu.logical_cores} threads ({threads})\n")
    ram = f"  RAM {gib(cpu.ram_total_bytes)} total, {gib(cpu.ram_available_bytes)} available"
    if cpu.memory_limit_bytes is not None:
        ram += f" (cgroup limit {gib(cpu.memory_limit_bytes)})"
    out.write(ram + "\n\nGPUs\n")
    if report.gpus:
        rows = [
            (
                gpu.key,
                gpu.name,
                gib(gpu.total_bytes),
                gib(gpu.free_bytes),
                gpu.compute_capability or "-",
                gpu.driver or "-",
                "yes" if report.engine.can_offload_to(gpu.backend) else "no",
            )
            for gpu in report.gpus
        ]
        table = io.StringIO()
        print_table(("device", "name", "total", "free", "compute", "driver", "engine can use"), rows, file=table)
        out.write("".join(f"  {line}\n" for line in table.getvalue().splitlines()))
    else:
        out.write("  none found\n")
    engine = report.engine
    out.write("\nEngine\n")
    if engine.installed:
        offload = "GPU offload available" if engine.gpu_offload else "CPU only (no GPU offload)"
        out.write(f"  llama-cpp-python {engine.version or '?'}: {offload}\n")
        for device in engine.devices:
            memory = f", {gib(device.free_bytes)} free of {gib(device.total_bytes)}" if device.total_bytes else ""
            out.write(f"  {device.name} [{device.backend} {device.kind}] {device.description}{memory}\n")
    else:
        out.write(f"  not usable: {engine.error or 'llama-cpp-python is not installed'}\n")
    if report.notes:
        out.write("\nNotes\n" + "".join(f"  {note}\n" for note in report.notes))
    if report.problems:
        out.write("\nProblems\n" + "".join(f"  {problem}\n" for problem in report.problems))
    return out.getvalue().rstrip("\n")


def gib(n: int) -> str:
    """Memory in binary units, as GPU tools show it: ``512 MiB``, ``23.5 GiB``."""
    if abs(n) < GIB:
        return f"{n / MIB:.0f} MiB"
    return f"{n / GIB:.1f} GiB"
