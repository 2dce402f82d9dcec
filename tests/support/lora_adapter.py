"""A tiny GGUF LoRA adapter (for the 64-wide synthetic models), for tests that package adapters."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

__all__ = ["write_adapter"]


def write_adapter(path: Path, *, kind: str = "adapter") -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(kind)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.full((4, 64), 0.01, dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.full((64, 4), 0.02, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
