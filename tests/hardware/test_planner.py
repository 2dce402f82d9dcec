"""Planner decisions against hand-computed expectations (the arithmetic is written out in each test).

Constants the arithmetic uses (docs/hardware.md explains them):
  KV per block        = cells × kv_heads × (key_len + value_len) × bytes per element (f16: 2)
  compute buffer      = 4 × n_ubatch × max(n_embd + n_vocab, 1 + 4·n_embd + cells·(1 + n_head)) + 32 MiB
  CUDA overhead       = 457 MiB;  GPU margin = max(256 MiB, 2% of total)
  RAM margin          = max(512 MiB, 5% of total);  logits = 4 × slots × (n_vocab + n_embd)
  CPU compute when every block is offloaded = 4 × n_ubatch × n_embd + 32 MiB
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.hardware import CPUInfo, EngineDevice, EngineSupport, GPUDevice, HardwareReport
from ingot.daemon.planner import ModelShape, PlanError, next_attempt, plan_offload

MIB = 2**20
GIB = 2**30

LLAMA_7B_Q4_K_M = ModelShape(
    block_count=32,
    layer_bytes=(120 * MIB,) * 32,
    token_embd_bytes=70 * MIB,
    output_bytes=105 * MIB,
    head_count_kv=32,
    key_length=128,
    value_length=128,
    embedding_length=4096,
    vocab_size=32000,
    context_length=32768,
    head_count=32,
    name="7B-like",
)
LLAMA_70B_Q4_K_M = ModelShape(
    block_count=80,
    layer_bytes=(490 * MIB,) * 80,
    token_embd_bytes=140 * MIB,
    output_bytes=210 * MIB,
    head_count_kv=8,
    key_length=128,
    value_length=128,
    embedding_length=8192,
    vocab_size=32000,
    context_length=16384,
    head_count=64,
    name="70B-like",
)
TINY = ModelShape(
    block_count=2,
    layer_bytes=(MIB, MIB),
    token_embd_bytes=MIB // 2,
    output_bytes=MIB // 2,
    head_count_kv=2,
    key_length=16,
    value_length=16,
    embedding_length=64,
    vocab_size=512,
    context_length=2048,
)

CUDA = EngineSupport(True, "0.3.36", True, (EngineDevice("CUDA0", "GPU", "gpu", "CUDA", 1, 1),))
ROCM = EngineSupport(True, "0.3.36", True, (EngineDevice("ROCm0", "GPU", "gpu", "ROCm", 1, 1),))
METAL = EngineSupport(True, "0.3.36", True, (EngineDevice("MTL0", "Apple M2 Max", "gpu", "MTL", 1, 1),))
CPU_ONLY_ENGINE = EngineSupport(True, "0.3.36", False, (EngineDevice("CPU", "CPU", "cpu", "CPU", 1, 1),))
BIG_HOST = CPUInfo("host", 16, 32, 32, 64 * GIB, 60 * GIB)


def cuda(index: int, name: str, total_mib: int, free_mib: int) -> GPUDevice:
    return GPUDevice(index, "cuda", name, total_mib * MIB, free_mib * MIB, "8.6", "550.54.14", f"GPU-{index}")


def rtx4090() -> GPUDevice:
    return cuda(0, "NVIDIA GeForce RTX 4090", 24564, 24080)


def test_7b_at_4k_fits_entirely_on_a_4090() -> None:
    plan = plan_offload(LLAMA_7B_Q4_K_M, HardwareReport(BIG_HOST, (rtx4090(),), CUDA), n_ctx=4096)
    # KV per block: 4096 × 32 × 256 × 2 = 64 MiB;  compute: 4 × 512 × (1 + 16384 + 4096 × 33) + 32 MiB
    compute = 4 * 512 * (1 + 4 * 4096 + 4096 * 33) + 32 * MIB
    assert compute == 343_934_976
    # GPU: 32 blocks (120 MiB + 64 MiB KV) + output 105 MiB + compute + 457 MiB overhead
    gpu = 32 * (120 + 64) * MIB + 105 * MIB + 457 * MIB + compute
    # budget: 24080 MiB free − max(256 MiB, 2% of 24564 MiB = 515141713 B) = 24734568367 B, so it fits
    assert gpu <= 24080 * MIB - 515_141_713
    assert plan.n_gpu_layers == 33
    assert plan.per_device_bytes == {"cuda:0": gpu} == {"cuda:0": 7_107_250_176}
    # RAM: token embedding 70 MiB + CPU compute (4 × 512 × 4096 + 32 MiB) + logits 4 × (32000 + 4096)
    assert plan.ram_bytes == 70 * MIB + (4 * 512 * 4096 + 32 * MIB) + 4 * (32000 + 4096)
    assert plan.kv_cache_bytes == 32 * 64 * MIB
    assert (plan.tensor_split, plan.main_gpu, plan.engine_can_offload) == ((), 0, True)
    assert plan.effective_n_gpu_layers == 33
    # Even 32k fits somewhere (RAM takes the rest), up to the model's training context.
    assert plan.max_n_ctx == 32768
    assert plan.notes == ()


def test_7b_at_32k_on_a_12gb_card_offloads_14_layers() -> None:
    gpu = cuda(0, "NVIDIA GeForce RTX 3060", 12288, 11931)
    plan = plan_offload(LLAMA_7B_Q4_K_M, HardwareReport(BIG_HOST, (gpu,), CUDA), n_ctx=32768)
    # KV per block: 32768 × 32 × 256 × 2 = 512 MiB;  compute: 4 × 512 × (1 + 16384 + 32768 × 33) + 32 MiB
    compute = 4 * 512 * (1 + 16384 + 32768 * 33) + 32 * MIB
    assert compute == 2_281_703_424
    # room for blocks: 11931 MiB − 256 MiB margin (2% of 12 GiB is less) − 457 MiB − compute = 9481222144 B
    room = 11931 * MIB - 256 * MIB - 457 * MIB - compute
    per_block = (120 + 512) * MIB
    assert room // per_block == 14  # 9481222144 / 662700032 = 14.3
    assert plan.n_gpu_layers == 14
    assert plan.per_device_bytes == {"cuda:0": 14 * per_block + compute + 457 * MIB}
    # RAM: embedding + 18 CPU blocks + output layer, their KV, the CPU compute buffer and logits
    assert plan.ram_bytes == (70 + 18 * 120 + 105) * MIB + 18 * 512 * MIB + compute + 4 * (32000 + 4096)
    assert plan.kv_cache_bytes == 16 * GIB


def test_7b_at_32k_on_a_small_cpu_box_names_the_largest_context() -> None:
    host = CPUInfo("laptop", 4, 8, 8, 16 * GIB, 12 * GIB)
    hardware = HardwareReport(host, (), CPU_ONLY_ENGINE)
    with pytest.raises(PlanError) as caught:
        plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=32768)
    # RAM budget: 12 GiB − max(512 MiB, 5% of 16 GiB = 858993459 B) = 12025908429 B.
    budget = 12 * GIB - 858_993_459

    def need(cells: int) -> int:  # KV (32 × 32 × 256 × 2 = 512 KiB per cell) + compute + logits
        return cells * 524_288 + 4 * 512 * (1 + 16384 + cells * 33) + 32 * MIB + 4 * (32000 + 4096)

    assert need(19968) <= budget < need(19968 + 256)
    error = caught.value
    assert error.max_n_ctx == 19968
    assert error.needed_bytes == need(32768)
    assert error.available_bytes == budget
    assert "the largest context that fits is 19968 tokens" in str(error)
    assert "PARAMETER num_ctx 19968" in str(error)
    # A q8_0 cache (34 bytes per 32 values) makes 32k fit: 32 blocks × 32768 × 32 × 256 × 34/32 = 9126805504 B
    # of KV, plus the same compute buffer and logits: 11408653312 B, under the budget.
    plan = plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=32768, kv_type="q8_0")
    assert plan.kv_cache_bytes == 32 * (32768 * 32 * 256 * 34 // 32) == 9_126_805_504
    assert plan.ram_bytes - (70 + 32 * 120 + 105) * MIB == 9_126_805_504 + 2_281_703_424 + 4 * (32000 + 4096) <= budget
    assert plan.n_gpu_layers == 0


def test_70b_at_4k_splits_over_two_24gb_cards() -> None:
    gpus = (cuda(0, "NVIDIA GeForce RTX 3090", 24576, 24231), cuda(1, "NVIDIA GeForce RTX 3090", 24576, 24231))
    plan = plan_offload(LLAMA_70B_Q4_K_M, HardwareReport(BIG_HOST, gpus, CUDA), n_ctx=4096)
    # KV per block: 4096 × 8 × 256 × 2 = 16 MiB;  compute: 4 × 512 × (1 + 32768 + 4096 × 65) + 32 MiB
    compute = 4 * 512 * (1 + 32768 + 4096 * 65) + 32 * MIB
    # All 81 units are 80 × 506 MiB + 210 MiB = 40690 MiB, under the two cards' room. Equal rooms split the
    # bytes in half (20345 MiB): block j's midpoint (j + 0.5) × 506 MiB is below it for j ≤ 39.
    assert plan.n_gpu_layers == 81
    assert plan.tensor_split == (40.0, 41.0)
    assert plan.main_gpu == 1
    assert plan.per_device_bytes == {
        "cuda:0": 40 * 506 * MIB + compute + 457 * MIB,
        "cuda:1": 40 * 506 * MIB + 210 * MIB + compute + 457 * MIB,
    }
    margin = 515_396_075  # 2% of 24576 MiB
    assert max(plan.per_device_bytes.values()) <= 24231 * MIB - margin


def test_70b_at_16k_on_two_24gb_cards_leaves_four_blocks_on_the_cpu() -> None:
    gpus = (cuda(0, "NVIDIA GeForce RTX 3090", 24576, 24231), cuda(1, "NVIDIA GeForce RTX 3090", 24576, 24231))
    host = CPUInfo("host", 16, 32, 32, 128 * GIB, 120 * GIB)
    plan = plan_offload(LLAMA_70B_Q4_K_M, HardwareReport(host, gpus, CUDA), n_ctx=16384)
    # KV per block: 16384 × 8 × 256 × 2 = 64 MiB, so a block costs 554 MiB on a GPU.
    compute = 4 * 512 * (1 + 32768 + 16384 * 65) + 32 * MIB
    room = 24231 * MIB - 515_396_075 - 457 * MIB - compute  # 22131746325 B per card
    # 76 blocks split 38/38 fit (38 × 554 MiB = 22074621952 B); 77 would put 39 on the second card.
    assert 38 * 554 * MIB <= room < 39 * 554 * MIB
    assert plan.n_gpu_layers == 76
    assert plan.tensor_split == (38.0, 38.0)
    assert plan.ram_bytes == (140 + 4 * 490 + 210) * MIB + 4 * 64 * MIB + compute + 4 * (32000 + 8192)


def test_nearly_full_gpu_among_eight_gets_no_layers() -> None:
    # A 70B-like model at 16 bits: 80 blocks of 1600 MiB, far more than one 80 GB card holds.
    f16_70b = ModelShape(
        block_count=80,
        layer_bytes=(1600 * MIB,) * 80,
        token_embd_bytes=500 * MIB,
        output_bytes=500 * MIB,
        head_count_kv=8,
        key_length=128,
        value_length=128,
        embedding_length=8192,
        vocab_size=32000,
        context_length=4096,
        head_count=64,
    )
    gpus = tuple(cuda(i, "NVIDIA H100 80GB HBM3", 81559, 1203 if i == 5 else 81004) for i in range(8))
    plan = plan_offload(f16_70b, HardwareReport(BIG_HOST, gpus, CUDA), n_ctx=4096)
    # GPU 5 has 1203 MiB free: less than its margin (2% of 81559 MiB) + 457 MiB + the compute buffer. The
    # other seven share 80 × (1600 + 16) MiB + 500 MiB = 129780 MiB in sevenths (18540 MiB each): block j
    # (midpoint (j + 0.5) × 1616 MiB) goes to the share holding it, so the cuts fall after blocks
    # 10, 22, 33, 45, 56 and 68, and the last card also takes the output layer.
    assert plan.n_gpu_layers == 81
    assert plan.tensor_split == (11.0, 12.0, 11.0, 12.0, 11.0, 0.0, 12.0, 12.0)
    assert "cuda:5" not in plan.per_device_bytes
    assert any("cuda:5" in note and "gets no layers" in note for note in plan.notes)


def test_a_model_that_fits_on_one_gpu_uses_one() -> None:
    gpus = tuple(cuda(i, "NVIDIA H100 80GB HBM3", 81559, 1203 if i == 0 else 81004) for i in range(8))
    plan = plan_offload(LLAMA_70B_Q4_K_M, HardwareReport(BIG_HOST, gpus, CUDA), n_ctx=4096)
    # 40690 MiB of blocks and KV fit in one H100; the first card with the most room (cuda:1) takes them all.
    assert plan.n_gpu_layers == 81
    assert plan.tensor_split == (0.0, 81.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert plan.main_gpu == 1
    assert list(plan.per_device_bytes) == ["cuda:1"]
    assert any("fits on cuda:1 alone" in note for note in plan.notes)


def test_tiny_model_fits_anywhere() -> None:
    cpu_box = CPUInfo("pi", 4, 4, 4, 2 * GIB, GIB)
    cpu_plan = plan_offload(TINY, HardwareReport(cpu_box, (), CPU_ONLY_ENGINE), n_ctx=2048)
    assert (cpu_plan.n_gpu_layers, cpu_plan.backend, cpu_plan.engine_can_offload) == (0, None, False)
    # KV: 2048 cells × 2 heads × 32 × 2 B = 256 KiB per block, both blocks in RAM.
    assert cpu_plan.kv_cache_bytes == 2 * 2048 * 2 * 32 * 2
    gpu_plan = plan_offload(TINY, HardwareReport(BIG_HOST, (rtx4090(),), CUDA), n_ctx=2048)
    assert gpu_plan.n_gpu_layers == 3
    mac = GPUDevice(0, "metal", "Apple M1", 16 * GIB * 2 // 3, 16 * GIB * 2 // 3, None, "macOS 14.5")
    mac_plan = plan_offload(TINY, HardwareReport(CPUInfo("M1", 8, 8, 8, 16 * GIB, 10 * GIB), (mac,), METAL), n_ctx=2048)
    assert (mac_plan.n_gpu_layers, mac_plan.backend) == (3, "metal")


def test_unified_memory_counts_gpu_bytes_against_ram() -> None:
    working_set = 48 * GIB  # 3/4 of a 64 GiB Mac
    mac = GPUDevice(0, "metal", "Apple M2 Max", working_set, working_set, None, "macOS 14.5")
    roomy = HardwareReport(CPUInfo("M2 Max", 12, 12, 12, 64 * GIB, 56 * GIB), (mac,), METAL)
    plan = plan_offload(LLAMA_70B_Q4_K_M, roomy, n_ctx=4096)
    assert plan.n_gpu_layers == 81
    # With only 40 GiB of RAM available (budget 40 GiB − 5% of 64 GiB) the wired Metal buffers cannot all fit,
    # so the planner keeps some blocks as pageable memory-mapped weights on the CPU side.
    tight = HardwareReport(CPUInfo("M2 Max", 12, 12, 12, 64 * GIB, 40 * GIB), (mac,), METAL)
    plan = plan_offload(LLAMA_70B_Q4_K_M, tight, n_ctx=4096)
    assert 0 < plan.n_gpu_layers < 81
    ram_budget = 40 * GIB - 3_435_973_836
    cpu = plan.usage[-1]
    assert plan.per_device_bytes["metal:0"] + cpu.kv_bytes + cpu.compute_bytes <= ram_budget


def test_engine_without_gpu_support_still_plans_and_says_how_to_fix_it() -> None:
    plan = plan_offload(LLAMA_7B_Q4_K_M, HardwareReport(BIG_HOST, (rtx4090(),), CPU_ONLY_ENGINE), n_ctx=4096)
    assert plan.n_gpu_layers == 33
    assert plan.engine_can_offload is False
    assert plan.effective_n_gpu_layers == 0
    assert any('CMAKE_ARGS="-DGGML_CUDA=on"' in note and "llama-cpp-python==0.3.36" in note for note in plan.notes)


def test_forced_num_gpu() -> None:
    hardware = HardwareReport(BIG_HOST, (cuda(0, "NVIDIA GeForce RTX 3060", 12288, 11931),), CUDA)
    assert plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=4096, num_gpu=10).n_gpu_layers == 10
    assert plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=4096, num_gpu=0).n_gpu_layers == 0
    assert plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=4096, num_gpu=-1).n_gpu_layers == 33
    too_many = plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=4096, num_gpu=99)
    assert too_many.n_gpu_layers == 33
    assert any("more than the model's 33 layers" in note for note in too_many.notes)
    forced = plan_offload(LLAMA_7B_Q4_K_M, hardware, n_ctx=32768, num_gpu=20)
    assert forced.n_gpu_layers == 20
    assert any("exceeds the estimate" in note and "14 layers would fit" in note for note in forced.notes)


def test_parallel_slots_multiply_the_cache() -> None:
    plan = plan_offload(LLAMA_7B_Q4_K_M, HardwareReport(BIG_HOST, (rtx4090(),), CUDA), n_ctx=4096, n_parallel=4)
    # 4 slots × 4096 = 16384 cells: 16384 × 32 × 256 × 2 × 32 blocks = 8 GiB
    assert plan.kv_cache_bytes == 8 * GIB
    assert (plan.n_ctx, plan.n_parallel) == (4096, 4)


def test_retry_ladder_fewer_layers_then_smaller_batch() -> None:
    shape = LLAMA_7B_Q4_K_M
    hardware = HardwareReport(BIG_HOST, (rtx4090(),), CUDA)
    plan = plan_offload(shape, hardware, n_ctx=4096)
    rungs = []
    while (plan := next_attempt(plan, shape, hardware)) is not None:
        rungs.append((plan.n_gpu_layers, plan.n_batch))
        assert plan.notes[0].startswith("retry: ")
    # Each rung drops a quarter of the offloaded layers (rounded up, at least one): 33 → 24 → 18 → 13 → ...
    assert rungs == [
        (24, 512), (18, 512), (13, 512), (9, 512), (6, 512), (4, 512), (3, 512), (2, 512), (1, 512), (0, 512),
        (0, 256), (0, 128), (0, 64),
    ]  # fmt: skip


def test_gpu_family_choice() -> None:
    amd = GPUDevice(0, "rocm", "AMD Instinct MI210", 64 * GIB, 60 * GIB, "gfx90a")
    both = (rtx4090(), amd)
    plan = plan_offload(TINY, HardwareReport(BIG_HOST, both, CUDA), n_ctx=2048)
    assert plan.backend == "cuda"  # the engine drives CUDA even though the AMD card has more memory
    assert any("rocm GPU(s) also present" in note for note in plan.notes)
    assert plan_offload(TINY, HardwareReport(BIG_HOST, both, ROCM), n_ctx=2048).backend == "rocm"
    # Neither drivable: plan for the family with the most free memory.
    assert plan_offload(TINY, HardwareReport(BIG_HOST, both, CPU_ONLY_ENGINE), n_ctx=2048).backend == "rocm"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_ctx": 0}, "n_ctx must be at least 1"),
        ({"n_ctx": 512, "n_parallel": 0}, "n_parallel must be at least 1"),
        ({"n_ctx": 512, "num_gpu": -2}, "num_gpu must be -1 (auto), 0 (CPU only) or a layer count"),
        ({"n_ctx": 512, "kv_type": "q3_k"}, "unknown KV cache type 'q3_k'; use one of f32, f16, bf16, q8_0"),
    ],
)
def test_bad_requests(kwargs: dict, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan_offload(TINY, HardwareReport(BIG_HOST, (), CPU_ONLY_ENGINE), **kwargs)
    assert message in str(caught.value)


def test_shape_from_a_real_gguf(tmp_path: Path) -> None:
    from ingot.registry.gguf_info import inspect_gguf
    from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

    path = write_synthetic_gguf(tmp_path / "m.gguf", SyntheticSpec(n_embd=64, n_layer=3, n_head=4, n_head_kv=2))
    info = inspect_gguf(path)
    shape = ModelShape.from_gguf_info(info)
    assert (shape.block_count, shape.head_count_kv, shape.key_length, shape.value_length) == (3, 2, 16, 16)
    assert (shape.embedding_length, shape.vocab_size, shape.context_length, shape.heads) == (64, 512, 2048, 4)
    assert shape.layer_bytes == info.layer_bytes
    assert shape.weights_bytes == info.tensor_bytes
    plan = plan_offload(shape, HardwareReport(BIG_HOST, (rtx4090(),), CUDA), n_ctx=2048)
    assert plan.n_gpu_layers == 4


def test_inconsistent_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="3 layer sizes for 2 blocks"):
        ModelShape(2, (1, 2, 3), 1, 1, 1, 1, 1, 1, 1, 1)
