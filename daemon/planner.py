"""The offload planner: how many layers go to which GPU, and whether the context fits at all.

It mirrors how llama.cpp places a model (``llama_model::load_tensors``):

- the token embedding ("input layer") always stays in RAM;
- with ``n_gpu_layers = k`` the *last* ``k`` repeating blocks go to the GPUs,
  and ``k = block_count + 1`` moves the output layer too; so there are
  ``block_count + 1`` offloadable units;
- the offloaded units are cut into contiguous runs, one per GPU, by
  ``tensor_split`` (unit ``j`` of ``k`` goes to the first device whose cumulative
  split share exceeds ``j / k``); we hand llama.cpp per-device unit counts,
  which it normalises, so the estimate and the real placement agree exactly;
- each block's KV cache lives on the device holding that block.

Memory per GPU = its blocks' weights + their KV cache + (output layer) +
compute buffer + backend overhead, and must stay under free memory minus a
safety margin. RAM holds the embedding, the CPU blocks and their KV cache, the
CPU compute buffer and the logits buffer. Weights in RAM are memory-mapped and
may page (slow, not fatal); KV cache and compute buffers may not. Formulas and
constants are documented in docs/hardware.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from ingot.daemon.hardware.report import GPU_BACKENDS, GPUDevice, HardwareReport
from ingot.daemon.hardware.engine import rebuild_command

MIB = 1024**2
GIB = 1024**3

# Bytes per block and elements per block of each KV cache type (ggml type traits).
KV_CACHE_TYPES: dict[str, tuple[int, int]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "q8_0": (34, 32),
    "q5_1": (24, 32),
    "q5_0": (22, 32),
    "q4_1": (20, 32),
    "q4_0": (18, 32),
    "iq4_nl": (18, 32),
}
# Runtime memory a backend takes before any tensor (CUDA/HIP context, cuBLAS/rocBLAS
# workspaces, Metal library); Ollama's discover package uses the same minimums.
BACKEND_OVERHEAD_BYTES: dict[str, int] = {"cuda": 457 * MIB, "rocm": 457 * MIB, "metal": 512 * MIB}
# Headroom left free on every GPU: fragmentation, other processes, estimate error.
GPU_MARGIN_MIN_BYTES = 256 * MIB
GPU_MARGIN_FRACTION = 0.02
# Headroom left in RAM for the OS, the daemon and the runner process itself.
RAM_MARGIN_MIN_BYTES = 512 * MIB
RAM_MARGIN_FRACTION = 0.05
# ggml graph metadata and allocator slack per compute buffer.
GRAPH_OVERHEAD_BYTES = 32 * MIB
# llama.cpp rounds the KV cache size up to a multiple of this many cells.
KV_CELL_PADDING = 256
# The retry ladder stops halving the batch here.
MIN_BATCH = 64
AUTO = -1


class PlanError(ValueError):
    """The request cannot be placed; the message says what fits instead."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        max_n_ctx: int | None = None,
        needed_bytes: int | None = None,
        available_bytes: int | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.max_n_ctx = max_n_ctx
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        super().__init__(f"{message}; {hint}" if hint else message)


@dataclass(frozen=True)
class ModelShape:
    """What the planner needs to know about a model: tensor bytes and attention geometry."""

    block_count: int
    layer_bytes: tuple[int, ...]
    token_embd_bytes: int
    output_bytes: int
    head_count_kv: int
    key_length: int
    value_length: int
    embedding_length: int
    vocab_size: int
    context_length: int
    head_count: int = 0  # 0: derive as embedding_length // key_length
    other_bytes: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.block_count < 1:
            problems.append(f"block_count is {self.block_count}")
        if len(self.layer_bytes) != self.block_count:
            problems.append(f"{len(self.layer_bytes)} layer sizes for {self.block_count} blocks")
        for field_name in ("head_count_kv", "key_length", "value_length", "embedding_length", "vocab_size"):
            if getattr(self, field_name) < 1:
                problems.append(f"{field_name} is {getattr(self, field_name)}")
        if problems:
            label = f"model shape {self.name}" if self.name else "model shape"
            raise ValueError(f"{label}: {'; '.join(problems)}")

    @property
    def heads(self) -> int:
        return self.head_count or max(1, self.embedding_length // self.key_length)

    @property
    def weights_bytes(self) -> int:
        return sum(self.layer_bytes) + self.token_embd_bytes + self.output_bytes + self.other_bytes

    @classmethod
    def from_gguf_info(cls, info: Any) -> ModelShape:
        """Build from ``ingot.registry.gguf_info.GGUFInfo`` (header facts, no weights loaded).

        A model with tied embeddings has no ``output`` tensor: llama.cpp then
        duplicates ``token_embd`` into the output layer's buffer, so the output
        layer costs the embedding's bytes again when offloaded.
        """
        missing = [
            name
            for name in ("block_count", "head_count_kv", "key_length", "value_length", "embedding_length", "vocab_size")
            if not getattr(info, name, None)
        ]
        if missing:
            raise PlanError(
                f"{getattr(info, 'path', 'model')}: the GGUF header lacks {', '.join(missing)}",
                hint="the planner needs the attention geometry; is this a language model?",
            )
        output = int(info.output_bytes)
        if getattr(info, "tied_embeddings", False):
            output += int(info.token_embd_bytes)
        layer_bytes = tuple(int(b) for b in info.layer_bytes)
        return cls(
            block_count=len(layer_bytes),
            layer_bytes=layer_bytes,
            token_embd_bytes=int(info.token_embd_bytes),
            output_bytes=output,
            head_count_kv=int(info.head_count_kv),
            key_length=int(info.key_length),
            value_length=int(info.value_length),
            embedding_length=int(info.embedding_length),
            vocab_size=int(info.vocab_size),
            context_length=int(info.context_length or 0),
            head_count=int(getattr(info, "head_count", 0) or 0),
            other_bytes=int(getattr(info, "other_bytes", 0) or 0),
            name=str(getattr(info, "name", "") or ""),
        )


@dataclass(frozen=True)
class DeviceUsage:
    """Estimated memory on one device (a GPU, or ``cpu`` for RAM)."""

    key: str
    name: str
    layers: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    budget_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.budget_bytes


@dataclass(frozen=True)
class Plan:
    """Where a model goes. ``n_ctx`` is per slot; the engine's context holds ``n_ctx * n_parallel`` cells."""

    n_gpu_layers: int
    tensor_split: tuple[float, ...]
    main_gpu: int
    n_ctx: int
    n_parallel: int
    per_device_bytes: dict[str, int]
    ram_bytes: int
    kv_cache_bytes: int
    notes: tuple[str, ...]
    engine_can_offload: bool
    n_batch: int = 512
    kv_type: str = "f16"
    flash_attn: bool = False
    backend: str | None = None
    max_n_ctx: int = 0
    usage: tuple[DeviceUsage, ...] = field(default=())

    @property
    def effective_n_gpu_layers(self) -> int:
        """What to pass to the engine: no layers when the installed build cannot offload."""
        return self.n_gpu_layers if self.engine_can_offload else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tensor_split"] = list(self.tensor_split)
        data["notes"] = list(self.notes)
        data["usage"] = [{**asdict(u), "total_bytes": u.total_bytes, "fits": u.fits} for u in self.usage]
        data["effective_n_gpu_layers"] = self.effective_n_gpu_layers
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


# ---------------------------------------------------------------------------
# arithmetic


def kv_bytes_per_layer(shape: ModelShape, kv_cells: int, kv_type: str) -> int:
    """K and V for ``kv_cells`` tokens in one block: cells × kv heads × (key + value dims) × type size."""
    block_bytes, block_elements = KV_CACHE_TYPES[kv_type]
    elements = kv_cells * shape.head_count_kv * (shape.key_length + shape.value_length)
    return -(-elements * block_bytes // block_elements)


def kv_cells(n_ctx: int, n_parallel: int) -> int:
    return -(-(n_ctx * n_parallel) // KV_CELL_PADDING) * KV_CELL_PADDING


def compute_buffer_bytes(shape: ModelShape, kv_cells_total: int, n_batch: int, *, flash_attn: bool) -> int:
    """Compute buffer of a device that evaluates blocks (Ollama's llama estimate, plus graph overhead).

    4 bytes × n_ubatch × max(n_embd + n_vocab,  1 + 4·n_embd + n_kv·(1 + n_head)):
    the logits of one micro-batch, or its f32 activations plus the KQ attention
    scores of every head over the whole cache. Flash attention never
    materialises KQ, so the n_kv term drops.
    """
    n_ubatch = min(n_batch, kv_cells_total)
    attention = 0 if flash_attn else kv_cells_total * (1 + shape.heads)
    per_token = max(shape.embedding_length + shape.vocab_size, 1 + 4 * shape.embedding_length + attention)
    return 4 * n_ubatch * per_token + GRAPH_OVERHEAD_BYTES


def gpu_margin(device: GPUDevice) -> int:
    return max(GPU_MARGIN_MIN_BYTES, int(device.total_bytes * GPU_MARGIN_FRACTION))


def ram_margin(total: int) -> int:
    return max(RAM_MARGIN_MIN_BYTES, int(total * RAM_MARGIN_FRACTION))


@dataclass(frozen=True)
class _Context:
    """Everything that depends on the request but not on how many layers are offloaded."""

    shape: ModelShape
    devices: tuple[GPUDevice, ...]
    kv_layer: int
    gpu_compute: int
    cpu_compute_partial: int
    cpu_compute_full: int
    logits: int
    budgets: tuple[int, ...]  # per device: free − margin − overhead − compute (room for layers)
    ram_budget: int
    unified: bool


def _context(
    shape: ModelShape,
    devices: tuple[GPUDevice, ...],
    ram_available: int,
    ram_total: int,
    *,
    n_ctx: int,
    n_parallel: int,
    kv_type: str,
    n_batch: int,
    flash_attn: bool,
) -> _Context:
    cells = kv_cells(n_ctx, n_parallel)
    compute = compute_buffer_bytes(shape, cells, n_batch, flash_attn=flash_attn)
    n_ubatch = min(n_batch, cells)
    budgets = tuple(
        d.free_bytes - gpu_margin(d) - BACKEND_OVERHEAD_BYTES[d.backend] - compute for d in devices
    )
    return _Context(
        shape=shape,
        devices=devices,
        kv_layer=kv_bytes_per_layer(shape, cells, kv_type),
        gpu_compute=compute,
        cpu_compute_partial=compute,
        # With every block on a GPU the CPU only looks up embeddings for the micro-batch.
        cpu_compute_full=4 * n_ubatch * shape.embedding_length + GRAPH_OVERHEAD_BYTES,
        logits=4 * n_parallel * (shape.vocab_size + shape.embedding_length),
        budgets=budgets,
        ram_budget=ram_available - ram_margin(ram_total),
        unified=any(d.unified_memory for d in devices),
    )


def _units(ctx: _Context, k: int) -> list[tuple[int, int]]:
    """(weight bytes, kv bytes) of the offloaded units, in placement order."""
    n = ctx.shape.block_count
    if k <= n:
        return [(ctx.shape.layer_bytes[i], ctx.kv_layer) for i in range(n - k, n)]
    return [(b, ctx.kv_layer) for b in ctx.shape.layer_bytes] + [(ctx.shape.output_bytes, 0)]


def _split(ctx: _Context, units: list[tuple[int, int]]) -> list[int]:
    """Unit counts per device, in proportion to each device's room (by bytes)."""
    rooms = [max(0, b) for b in ctx.budgets]
    if sum(rooms) <= 0:
        # No device has room (only a forced num_gpu gets here): spread by free memory and let it overflow.
        rooms = [max(0, d.free_bytes) for d in ctx.devices]
    total_room = sum(rooms)
    result = [0] * len(rooms)
    if not units or total_room <= 0:
        return result
    sizes = [w + kv for w, kv in units]
    total = sum(sizes)
    # Each unit goes to the device whose share of the byte range holds the unit's midpoint.
    bounds = []
    running = 0
    for room in rooms:
        running += room
        bounds.append(running / total_room * total)
    position = 0.0
    device = 0
    for size in sizes:
        midpoint = position + size / 2
        while device < len(rooms) - 1 and (midpoint >= bounds[device] or rooms[device] == 0):
            device += 1
        result[device] += 1
        position += size
    return result


@dataclass(frozen=True)
class _Placement:
    k: int
    counts: tuple[int, ...]
    usage: tuple[DeviceUsage, ...]  # GPUs (those with layers) then the CPU
    gpu_fits: bool
    ram_fits: bool
    ram_need: int  # what must stay resident in RAM (unified memory: GPU buffers too)
    ram_weights: int  # memory-mapped weights on the CPU side, which may page


def _place(ctx: _Context, k: int) -> _Placement:
    shape = ctx.shape
    n = shape.block_count
    units = _units(ctx, k) if ctx.devices else []
    if not ctx.devices:
        k = 0
    per_device = _split(ctx, units)
    usage: list[DeviceUsage] = []
    gpu_fits = sum(per_device) == len(units)  # units no device could take do not fit anywhere
    start = 0
    gpu_total = 0
    gpu_nonweight = 0
    for device, budget, count in zip(ctx.devices, ctx.budgets, per_device):
        chunk = units[start : start + count]
        start += count
        if count == 0:
            continue
        weights = sum(w for w, _ in chunk)
        kv = sum(v for _, v in chunk)
        overhead = BACKEND_OVERHEAD_BYTES[device.backend]
        entry = DeviceUsage(
            key=device.key,
            name=device.name,
            layers=count,
            weights_bytes=weights,
            kv_bytes=kv,
            compute_bytes=ctx.gpu_compute,
            overhead_bytes=overhead,
            budget_bytes=device.free_bytes - gpu_margin(device),
        )
        gpu_fits = gpu_fits and entry.fits
        gpu_total += entry.total_bytes
        gpu_nonweight += kv + ctx.gpu_compute + overhead
        usage.append(entry)
    cpu_blocks = n - min(k, n)
    cpu_weights = shape.token_embd_bytes + shape.other_bytes + sum(shape.layer_bytes[:cpu_blocks])
    if k <= n:
        cpu_weights += shape.output_bytes
    cpu_kv = cpu_blocks * ctx.kv_layer
    cpu_compute = ctx.cpu_compute_partial if k <= n else ctx.cpu_compute_full
    ram_nonweight = cpu_kv + cpu_compute + ctx.logits
    # Unified memory: what the GPU holds is wired out of the same RAM.
    ram_need = ram_nonweight + (gpu_total if ctx.unified else 0)
    usage.append(
        DeviceUsage(
            key="cpu",
            name="RAM",
            layers=cpu_blocks + (1 if k <= n else 0),
            weights_bytes=cpu_weights,
            kv_bytes=cpu_kv,
            compute_bytes=cpu_compute + ctx.logits,
            overhead_bytes=0,
            budget_bytes=ctx.ram_budget,
        )
    )
    return _Placement(
        k=k,
        counts=tuple(per_device),
        usage=tuple(usage),
        gpu_fits=gpu_fits,
        ram_fits=ram_need <= ctx.ram_budget,
        ram_need=ram_need,
        ram_weights=cpu_weights,
    )


def _only(ctx: _Context, index: int) -> _Context:
    """The same request with every GPU but one left out of the split."""
    budgets = tuple(budget if i == index else 0 for i, budget in enumerate(ctx.budgets))
    return replace(ctx, budgets=budgets)


def _best(ctx: _Context) -> _Placement | None:
    """Most layers on the GPUs that fit both the GPUs and RAM; None when nothing fits."""
    if not ctx.devices:
        placement = _place(ctx, 0)
        return placement if placement.ram_fits else None
    for k in range(ctx.shape.block_count + 1, -1, -1):
        placement = _place(ctx, k)
        if placement.gpu_fits:
            if placement.ram_fits:
                return placement
            if not ctx.unified:
                # Fewer GPU layers only move KV cache into RAM, so nothing below fits either.
                return None
    return None


# ---------------------------------------------------------------------------
# the public entry points


def plan_offload(
    shape: ModelShape,
    hardware: HardwareReport,
    *,
    n_ctx: int,
    n_parallel: int = 1,
    num_gpu: int | None = None,
    kv_type: str = "f16",
    n_batch: int = 512,
    flash_attn: bool = False,
) -> Plan:
    """Plan placement for ``n_ctx`` tokens per slot × ``n_parallel`` slots.

    ``num_gpu`` (Modelfile ``PARAMETER num_gpu``): None or -1 chooses, 0 keeps
    everything on the CPU, N forces N layers (a forced value that exceeds the
    estimate is kept, with a warning in ``notes``). Raises ``PlanError`` when no
    placement holds the requested context, naming the largest that fits.
    """
    _validate(n_ctx=n_ctx, n_parallel=n_parallel, num_gpu=num_gpu, kv_type=kv_type, n_batch=n_batch)
    notes: list[str] = []
    backend, devices, can_offload = _choose_devices(hardware, notes)
    usable = tuple(d for d in devices if d.total_bytes > 0)

    def context_for(ctx_tokens: int) -> _Context:
        return _context(
            shape,
            usable,
            hardware.cpu.ram_available_bytes,
            hardware.cpu.ram_total_bytes,
            n_ctx=ctx_tokens,
            n_parallel=n_parallel,
            kv_type=kv_type,
            n_batch=n_batch,
            flash_attn=flash_attn,
        )

    ctx = context_for(n_ctx)
    for device, budget in zip(usable, ctx.budgets):
        if budget <= 0:
            notes.append(
                f"{device.key} ({device.name}) has {_gib(device.free_bytes)} free, not enough for the backend "
                f"overhead, compute buffer and margin ({_gib(device.free_bytes - budget)}); it gets no layers"
            )
    limit = max(shape.context_length, n_ctx)
    max_ctx = _max_context(context_for, limit)
    best = _best(ctx)
    if best is None:
        raise _too_large(
            shape, ctx, n_ctx=n_ctx, n_parallel=n_parallel, max_ctx=max_ctx, kv_type=kv_type, n_batch=n_batch
        )

    if num_gpu is None or num_gpu == AUTO:
        placement = best
        if usable and placement.k == 0:
            notes.append("no layer fits on the GPU with this context; everything runs on the CPU")
    else:
        k = min(num_gpu, shape.block_count + 1) if usable else 0
        if num_gpu > shape.block_count + 1:
            notes.append(
                f"num_gpu {num_gpu} is more than the model's {shape.block_count + 1} layers; using all of them"
            )
        if num_gpu > 0 and not usable:
            notes.append(f"num_gpu {num_gpu} asked for, but there is no GPU to put layers on")
        placement = _place(ctx, k)
        if not placement.gpu_fits:
            over = [u for u in placement.usage if u.key != "cpu" and not u.fits]
            shown = ", ".join(f"{u.key} needs {_gib(u.total_bytes)} of {_gib(u.budget_bytes)}" for u in over)
            notes.append(
                f"forced num_gpu {num_gpu} exceeds the estimate ({shown}); loading may fail — "
                f"{best.k} layers would fit"
            )
        if not placement.ram_fits:
            notes.append(
                f"forced num_gpu {num_gpu} leaves {_gib(placement.ram_need)} of KV cache and buffers "
                f"in RAM, more than the {_gib(ctx.ram_budget)} available"
            )

    if placement.ram_weights + placement.ram_need > ctx.ram_budget and placement.ram_fits:
        notes.append(
            f"weights in RAM ({_gib(placement.ram_weights)}) exceed available memory; "
            "they stay memory-mapped and page from disk, which is slow"
        )
    if n_ctx > shape.context_length > 0:
        notes.append(f"n_ctx {n_ctx} is beyond the model's training context of {shape.context_length}")
    if usable and backend and not can_offload:
        notes.append(
            f"planned for the detected {backend} GPU(s), but the installed engine cannot offload to them "
            f"and would run everything on the CPU; rebuild it with: {rebuild_command(backend, hardware.engine.version)}"
        )

    if len(usable) > 1 and placement.k > 0:
        # One GPU beats several when the layers fit on it: no second compute buffer and backend
        # context, no copies between cards (Ollama's scheduler makes the same choice).
        best_index = max(range(len(usable)), key=lambda i: (ctx.budgets[i], -i))
        single = _place(_only(ctx, best_index), placement.k)
        if ctx.budgets[best_index] > 0 and single.gpu_fits and single.ram_fits:
            placement = single
            notes.append(f"fits on {usable[best_index].key} alone; the other GPUs stay free")

    counts = placement.counts
    tensor_split: tuple[float, ...] = ()
    main_gpu = 0
    if usable and placement.k > 0:
        full_counts = _counts_for_all(devices, usable, counts)
        if len(devices) > 1:
            tensor_split = tuple(float(c) for c in full_counts)
        main_gpu = max(range(len(full_counts)), key=lambda i: (full_counts[i], -i))
    gpu_usage = [u for u in placement.usage if u.key != "cpu"]
    ram_usage = placement.usage[-1]
    kv_total = shape.block_count * ctx.kv_layer
    return Plan(
        n_gpu_layers=placement.k,
        tensor_split=tensor_split,
        main_gpu=main_gpu,
        n_ctx=n_ctx,
        n_parallel=n_parallel,
        per_device_bytes={u.key: u.total_bytes for u in gpu_usage},
        ram_bytes=ram_usage.total_bytes,
        kv_cache_bytes=kv_total,
        notes=tuple(notes),
        engine_can_offload=bool(usable) and can_offload,
        n_batch=n_batch,
        kv_type=kv_type,
        flash_attn=flash_attn,
        backend=backend,
        max_n_ctx=max_ctx,
        usage=placement.usage,
    )


def fewer_layers(plan: Plan, shape: ModelShape, hardware: HardwareReport) -> Plan | None:
    """The next rung after an out-of-memory load: a quarter fewer GPU layers (at least one)."""
    if plan.n_gpu_layers == 0:
        return None
    step = max(1, math.ceil(plan.n_gpu_layers / 4))
    layers = plan.n_gpu_layers - step
    note = f"retry: {layers} GPU layers instead of {plan.n_gpu_layers}"
    return _replan(plan, shape, hardware, num_gpu=layers, n_batch=plan.n_batch, note=note)


def smaller_batch(plan: Plan, shape: ModelShape, hardware: HardwareReport) -> Plan | None:
    """The rung after layers run out: half the batch (smaller compute buffers), down to 64."""
    if plan.n_batch <= MIN_BATCH:
        return None
    batch = max(MIN_BATCH, plan.n_batch // 2)
    note = f"retry: batch {batch} instead of {plan.n_batch}"
    return _replan(plan, shape, hardware, num_gpu=plan.n_gpu_layers, n_batch=batch, note=note)


def next_attempt(plan: Plan, shape: ModelShape, hardware: HardwareReport) -> Plan | None:
    """The scheduler's retry ladder: fewer layers until none are left, then smaller batches; None = give up."""
    return fewer_layers(plan, shape, hardware) or smaller_batch(plan, shape, hardware)


def _replan(plan: Plan, shape: ModelShape, hardware: HardwareReport, *, num_gpu: int, n_batch: int, note: str) -> Plan:
    retry = plan_offload(
        shape,
        hardware,
        n_ctx=plan.n_ctx,
        n_parallel=plan.n_parallel,
        num_gpu=num_gpu,
        kv_type=plan.kv_type,
        n_batch=n_batch,
        flash_attn=plan.flash_attn,
    )
    return replace(retry, notes=(note, *retry.notes))


# ---------------------------------------------------------------------------
# helpers


def _validate(*, n_ctx: int, n_parallel: int, num_gpu: int | None, kv_type: str, n_batch: int) -> None:
    if n_ctx < 1:
        raise PlanError(f"n_ctx must be at least 1, got {n_ctx}")
    if n_parallel < 1:
        raise PlanError(f"n_parallel must be at least 1, got {n_parallel}")
    if n_batch < 1:
        raise PlanError(f"n_batch must be at least 1, got {n_batch}")
    if num_gpu is not None and num_gpu < AUTO:
        raise PlanError(f"num_gpu must be -1 (auto), 0 (CPU only) or a layer count, got {num_gpu}")
    if kv_type not in KV_CACHE_TYPES:
        raise PlanError(f"unknown KV cache type {kv_type!r}", hint=f"use one of {', '.join(KV_CACHE_TYPES)}")


def _choose_devices(hardware: HardwareReport, notes: list[str]) -> tuple[str | None, tuple[GPUDevice, ...], bool]:
    """The GPU family to plan for: one the engine can drive, else the one with most free memory."""
    groups = {b: hardware.gpus_for(b) for b in GPU_BACKENDS if hardware.gpus_for(b)}
    if not groups:
        notes.append("no GPU detected: everything runs on the CPU")
        return None, (), False

    def free(backend: str) -> int:
        return sum(g.free_bytes for g in groups[backend])

    drivable = [b for b in groups if hardware.engine.can_offload_to(b)]
    backend = max(drivable or list(groups), key=free)
    can_offload = backend in drivable
    for other in groups:
        if other != backend:
            notes.append(f"{other} GPU(s) also present; one model uses one backend, so they are not planned for")
    for device in groups[backend]:
        if device.total_bytes == 0:
            notes.append(f"{device.key} ({device.name}) reports no memory; it gets no layers")
    return backend, groups[backend], can_offload


def _counts_for_all(devices: tuple[GPUDevice, ...], usable: tuple[GPUDevice, ...], counts: Sequence[int]) -> list[int]:
    by_key = {d.key: c for d, c in zip(usable, counts)}
    return [by_key.get(d.key, 0) for d in devices]


def _max_context(context_for: Any, limit: int) -> int:
    """Largest per-slot context (a multiple of 256, at most ``limit``) with some placement that fits."""
    def fits(tokens: int) -> bool:
        return _best(context_for(tokens)) is not None

    if limit <= 0:
        return 0
    if fits(limit):
        return limit
    low, high = 0, limit // KV_CELL_PADDING  # in units of 256 tokens; `low` always fits (0 = nothing)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * KV_CELL_PADDING):
            low = middle
        else:
            high = middle - 1
    return low * KV_CELL_PADDING


def _too_large(
    shape: ModelShape,
    ctx: _Context,
    *,
    n_ctx: int,
    n_parallel: int,
    max_ctx: int,
    kv_type: str,
    n_batch: int,
) -> PlanError:
    cpu_only = _place(ctx, 0)
    needed = cpu_only.ram_need
    available = max(0, ctx.ram_budget)
    slots = f" x {n_parallel} slots" if n_parallel > 1 else ""
    gpus = ""
    if ctx.devices:
        free = ", ".join(f"{d.key} {_gib(d.free_bytes)} free" for d in ctx.devices)
        gpus = f", and no split of the layers across the GPUs ({free}) holds enough of them to make up the rest"
    if max_ctx > 0:
        options = [f"use a context of at most {max_ctx} (PARAMETER num_ctx {max_ctx})"]
        if kv_type in ("f16", "f32", "bf16"):
            options.append("a quantized KV cache (--kv-type q8_0)")
        if n_batch > MIN_BATCH and ctx.cpu_compute_partial > shape.block_count * ctx.kv_layer:
            options.append(f"a smaller batch (PARAMETER num_batch {max(MIN_BATCH, n_batch // 2)})")
        if n_parallel > 1:
            options.append("fewer parallel slots")
        hint = options[0] if len(options) == 1 else ", ".join(options[:-1]) + ", or " + options[-1]
        largest = f"; the largest context that fits is {max_ctx} tokens"
    else:
        hint = "this model needs a machine with more memory"
        largest = "; no context size fits"
    return PlanError(
        f"context {n_ctx}{slots} does not fit: the KV cache ({_gib(shape.block_count * ctx.kv_layer)}) and compute "
        f"buffers need {_gib(needed)} in RAM with {_gib(available)} available{gpus}{largest}",
        hint=hint,
        max_n_ctx=max_ctx,
        needed_bytes=needed,
        available_bytes=available,
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"
