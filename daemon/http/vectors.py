"""Embedding vectors as both HTTP APIs return them: optionally shortened, then as floats or base64."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

__all__ = ["shortened", "as_base64", "as_floats"]


def shortened(values: Any, dimensions: int | None) -> np.ndarray:
    """The leading `dimensions` values, back to unit length (Matryoshka-style); all of them when None."""
    vector = np.asarray(values, dtype=np.float32)
    if dimensions is not None and dimensions < len(vector):
        vector = vector[:dimensions]
        norm = float(np.linalg.norm(vector))
        if norm > 0 and math.isfinite(norm):
            vector = vector / norm
    return vector


def as_floats(vector: np.ndarray) -> list[float]:
    return [float(v) for v in vector]


def as_base64(vector: np.ndarray) -> str:
    """Little-endian float32 bytes, base64: OpenAI's `encoding_format: base64`."""
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
